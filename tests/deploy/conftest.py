"""pytest setup for the deployment tests: the helpers live in deploytools.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
