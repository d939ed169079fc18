"""`python -m genembed ...`: the `genembed` command where its script is not on PATH (a source checkout on
PYTHONPATH, such as a GPU machine that cannot install the package)."""
from .cli import main

main()
