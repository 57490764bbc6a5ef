"""``python -m raynas ...``: the ``raynas`` command, e.g. where only a Python path is
known (``ray submit CLUSTER.yaml deploy/cluster/raynas_job.py -- search ...``)."""

import sys

from raynas.cli import main

if __name__ == "__main__":
    sys.exit(main())
