"""Run the raynas command on a launcher cluster's head node with ``ray submit``, which
uploads a script and runs it with the head's Python:

    ray submit deploy/cluster/aws.yaml deploy/cluster/raynas_job.py -- \
        search /mnt/raynas/configs/search.yaml --out /mnt/raynas/results/nb201

The arguments after ``--`` are those of ``raynas`` (``search``, ``bench``, ``report`` ...): this is
``python -m raynas``.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("raynas", run_name="__main__", alter_sys=True)
