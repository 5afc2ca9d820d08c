"""The demo legacy backend: a deterministic fake Clio Manage v4 server that knows matter access only.

It knows none of the newer visibility rules, which is what the proxy is for; tests, benchmarks and the
demo run it in-process (`make_app`) or as a subprocess (`python -m demo_backend`).
"""

from .app import make_app
from .cli import main, run
from .control import FAULTS_KEY, FIRM_KEY, REQUESTS_KEY, RecordedRequest
from .faults import Fault, Faults
from .firm import generate_firm
from .model import Firm

__all__ = [
    "FAULTS_KEY", "FIRM_KEY", "REQUESTS_KEY", "Fault", "Faults", "Firm", "RecordedRequest", "generate_firm",
    "main", "make_app", "run",
]
