"""The HTTP client (see the package docstring and clients/python/README.md)."""

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request


class LoanledgerError(Exception):
    """An error answer of loanledgerd: ``status`` (HTTP), ``code`` and ``message``."""

    def __init__(self, status, code, message):
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


class BadRequest(LoanledgerError):
    """400: a parameter is missing, unknown or malformed (the message says which)."""


class Unauthenticated(LoanledgerError):
    """401: no token, or a token the server does not know."""


class Forbidden(LoanledgerError):
    """403: the token's role may not read this (e.g. another institution's loan)."""


class NotFound(LoanledgerError):
    """404: no such loan."""


class Unavailable(LoanledgerError):
    """503 (or no answer at all): shutting down, a bound reached, storage trouble; retry later."""


_BY_STATUS = {400: BadRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 503: Unavailable}


def _frame(rows):
    try:
        import pandas  # noqa: PLC0415 (optional dependency)
    except ImportError as e:
        raise ImportError("as_frame=True needs pandas (apt-get install python3-pandas)") from e
    frame = pandas.DataFrame(rows)
    # Amounts stay exact int64 (never float): the largest is below 2^63.
    for column in frame.columns:
        if column.endswith("_fen") or column == "loan_count":
            frame[column] = frame[column].astype("int64")
    for column in ("date",):
        if column in frame.columns:
            frame[column] = pandas.to_datetime(frame[column])
    return frame


class Client:
    """``Client(url, token)``: url like ``http://127.0.0.1:8080`` (``https://`` when the server
    has TLS; pass ``cafile`` to trust its certificate), token from ``loanledger token new``.
    """

    def __init__(self, url, token, timeout=30.0, cafile=None):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=cafile) if cafile else None

    # ---- queries --------------------------------------------------------

    def report(self, date, by=None, categories=None, as_frame=False):
        """Report as of ``date`` (``"YYYY-MM-DD"`` or a ``datetime.date``): one dict per
        category (and group with ``by="province"|"institution"|"region_group"``)."""
        params = [("date", str(date))]
        if by:
            params.append(("by", by))
        if isinstance(categories, str):
            categories = [categories]
        for c in categories or []:
            params.append(("category", c))
        body = self.get("/v1/report", params)
        rows = body["rows"]
        if as_frame:
            frame = _frame(rows)
            frame.attrs["date"] = body["date"]
            return frame
        return rows

    def series(self, category, start, end, step="month", by=None, as_frame=False):
        """Balances of ``category`` at each period end from ``start`` to ``end`` (inclusive;
        the last period clipped to ``end``); ``step`` is day, month, quarter or year."""
        params = [("category", category), ("from", str(start)), ("to", str(end)),
                  ("step", step)]
        if by:
            params.append(("by", by))
        points = self.get("/v1/series", params)["points"]
        return _frame(points) if as_frame else points

    def loan(self, institution_id, loan_id, as_frame=False):
        """One loan as a dict: state, last seq, attributes, categories. With ``as_frame=True``
        a one-row DataFrame, the attributes as columns in place of ``attributes``."""
        path = "/v1/loans/{}/{}".format(urllib.parse.quote(institution_id, safe=""),
                                        urllib.parse.quote(loan_id, safe=""))
        body = self.get(path)
        if not as_frame:
            return body
        row = {}
        for key, value in body.items():
            if key == "attributes":
                row.update(value)
            else:
                row[key] = value
        return _frame([row])

    def health(self):
        return self.get("/v1/health")

    # ---- transport ------------------------------------------------------

    def get(self, path, params=None):
        """GET path?params with the token; the decoded JSON, or a LoanledgerError."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers={
            "Authorization": "Bearer " + self.token, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self._context) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raw = e.read().decode("utf-8", "replace")
            try:
                err = json.loads(raw)
                code, message = err["error"], err["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "HTTP_" + str(e.code), raw.strip() or e.reason
            raise _BY_STATUS.get(e.code, LoanledgerError)(e.code, code, message) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise Unavailable(None, "UNAVAILABLE", f"cannot reach {self.url}: {reason}") from None
