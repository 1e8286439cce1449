"""A loanledgerd with the HTTP API for the tests in tests/http (stdlib only).

Starts BUILD/server/loanledgerd on 127.0.0.1 port 0 for every listener, reads
the bound addresses from its ready file (tests/support/ll_server.py), makes
tokens with `loanledger token new`, submits a small portfolio through the CLI
and stops the server by its PID. The portfolio: two institutions, several
provinces, and GREEN loans of B0001 whose balances sum above 2^53 fen (so
that exactness is tested).
"""
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ll_server import ServerError, start_loanledgerd  # noqa: E402

HEADER = ("institution_id,loan_id,seq,business_date,event,amount_fen,borrower_type,enterprise_size,"
          "industry_code,region_code,term_months,credit_line_fen,srdi,tech_enterprise,green,"
          "elderly_care,digital_economy")


def portfolio():
    """Events of B0001 and B0002 as CSV lines (with the header), per institution."""
    b1 = [HEADER]
    # Ten green loans of 10^15 fen and one of 7 fen in Shanghai: 10^16 + 7 > 2^53.
    for i in range(10):
        b1.append(f"B0001,G{i},1,2023-06-0{1 + i % 9},DISBURSE,1000000000000000,ENTERPRISE,LARGE,"
                  f"C3911,310115,36,1000000000000000,0,0,1,0,0")
    b1.append("B0001,G10,1,2024-02-01,DISBURSE,7,ENTERPRISE,SMALL,C3911,310115,36,100,0,0,1,0,0")
    b1.append("B0001,L1,1,2023-01-05,DISBURSE,5000000000,ENTERPRISE,SMALL,C3911,440115,36,8000000000,"
              "1,1,0,0,1")
    b1.append("B0001,L1,2,2024-03-05,REPAY,1000000000,ENTERPRISE,SMALL,C3911,440115,36,8000000000,"
              "1,1,0,0,1")
    b1.append("B0001,L/2 x,1,2024-01-10,DISBURSE,123456,INDIVIDUAL,NA,,110105,12,0,0,0,0,0,0")
    b2 = [HEADER]
    b2.append("B0002,M1,1,2023-03-01,DISBURSE,800000000,INDIVIDUAL_BUSINESS,NA,A011,650102,24,"
              "900000000,0,0,0,1,0")
    b2.append("B0002,M2,1,2024-05-20,DISBURSE,250000,ENTERPRISE,MICRO,C2664,320102,6,500000,1,0,1,0,0")
    b2.append("B0002,M2,2,2024-08-20,WRITE_OFF,50000,ENTERPRISE,MICRO,C2664,320102,6,500000,1,0,1,0,0")
    return {"B0001": "\n".join(b1) + "\n", "B0002": "\n".join(b2) + "\n"}


class Server:
    def __init__(self, build, extra_args=(), submit=True, tls=False):
        self.build = os.path.abspath(build)
        self.cli = os.path.join(self.build, "client/loanledger")
        self.dir = tempfile.mkdtemp(prefix="loanledger-http-")
        self.tokens = {}
        lines = []
        for name, args in (("regulator", ["--role", "regulator"]), ("admin", ["--role", "admin"]),
                           ("B0001", ["--role", "institution", "--institution", "B0001"]),
                           ("B0002", ["--role", "institution", "--institution", "B0002"])):
            out = subprocess.run([self.cli, "token", "new", *args], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.splitlines()
            self.tokens[name] = out[0].strip()
            lines.append(out[1])
        with open(os.path.join(self.dir, "tokens"), "w") as f:
            f.write("\n".join(lines) + "\n")
        args = ["--http-listen", "127.0.0.1:0", "--log-level", "debug"]
        self.scheme = "http"
        if tls:
            cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", cert], capture_output=True, check=True, timeout=60)
            args += ["--tls-cert", cert, "--tls-key", key]
            self.cafile = cert
            self.scheme = "https"
        args += list(extra_args)
        self.log_path = os.path.join(self.dir, "loanledgerd.log")
        try:
            self.server = start_loanledgerd(self.build, os.path.join(self.dir, "data"),
                                            os.path.join(self.dir, "tokens"), self.log_path, args, timeout_s=60)
        except ServerError as e:
            raise RuntimeError(f"loanledgerd did not start: {e}") from None
        self.proc = self.server.proc
        self.listen = self.server.address("listen")
        self.http = self.server.address("http")
        self.url = f"{self.scheme}://{self.http}"
        if submit:
            for institution, text in portfolio().items():
                path = os.path.join(self.dir, institution + ".csv")
                with open(path, "w") as f:
                    f.write(text)
                self.run_cli(institution, "submit", path)

    def cli_args(self, who):
        args = ["--server", self.listen, "--token", self.tokens[who]]
        if self.scheme == "https":
            args += ["--tls", "--tls-ca", self.cafile]
        return args

    def run_cli(self, who, *args):
        """The CLI's stdout for `loanledger ARGS` with who's token; raises on a failure."""
        return subprocess.run([self.cli, *args, *self.cli_args(who)], capture_output=True,
                              check=True, timeout=60).stdout

    def log_text(self):
        return open(self.log_path).read()

    def stop(self):
        """SIGTERM by PID; the exit code (or None when it had to be killed)."""
        code = self.server.stop(timeout_s=30)
        return None if code == -signal.SIGKILL else code
