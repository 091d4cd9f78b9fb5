import sys
from pathlib import Path

# The reliability tests share their server helper (test_restarts.Server).
sys.path.insert(0, str(Path(__file__).parent))
