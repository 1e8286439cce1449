"""loanledger: a client of loanledgerd's HTTP read API (docs/http.md).

Standard library only; pandas is used for ``as_frame=True`` when installed.

    from loanledger import Client
    c = Client("http://127.0.0.1:8080", token)
    rows = c.report("2024-09-30", by="province", categories=["GREEN"])
    df = c.series("GREEN", "2024-01-01", "2024-09-30", as_frame=True)

Amounts are integers in fen (1 yuan = 100 fen), exact: Python's json keeps
big integers, so nothing is rounded above 2^53.
"""

from .client import (  # noqa: F401
    BadRequest,
    Client,
    Forbidden,
    LoanledgerError,
    NotFound,
    Unauthenticated,
    Unavailable,
)

__all__ = ["Client", "LoanledgerError", "BadRequest", "Unauthenticated", "Forbidden", "NotFound",
           "Unavailable"]
__version__ = "0.1.0"
