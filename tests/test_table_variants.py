"""Table variants for transfer tests: relabelled operations and monotone transforms."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raynas.errors import ArgumentError, TableError
from raynas.tables import BenchmarkTable
from raynas.tables.synthetic import synthetic_space, synthetic_table
from raynas.tables.variants import relabel_ops, transform_metric

SPACE = synthetic_space(3, 3)


@pytest.fixture
def data():
    return synthetic_table(SPACE, 27, seed=0, datasets=("a", "b"))  # every architecture


def test_relabelled_architectures_get_their_images_results(data):
    perm = [2, 0, 1]
    moved = BenchmarkTable(relabel_ops(data, SPACE, "b", perm), SPACE)
    before = BenchmarkTable(data, SPACE)
    for arch in before.archs:
        image = tuple(perm[c] for c in arch)
        for key in ("valid_acc", "test_acc", "train_time"):
            assert moved.column("b", key)[moved.row(arch)] == \
                before.column("b", key)[before.row(image)]
        assert moved.column("a", "valid_acc")[moved.row(arch)] == \
            before.column("a", "valid_acc")[before.row(arch)]  # other datasets untouched
    assert relabel_ops(data, SPACE, "b", [0, 1, 2]).equals(data)  # identity
    per_decision = relabel_ops(data, SPACE, "b", [[1, 0, 2], [0, 1, 2], [0, 1, 2]])
    assert not per_decision.equals(data)


def test_relabelling_the_shipped_table_makes_a_target_that_disagrees(table_path):
    """The disagreeing task family: CIFAR-100 with its ops relabelled no longer ranks
    cells as CIFAR-10 does, while its values and landscape are kept."""
    import pyarrow.parquet as pq
    from scipy.stats import spearmanr

    table = BenchmarkTable.load(table_path)
    moved = BenchmarkTable(relabel_ops(pq.read_table(table_path), table.space, "cifar100",
                                       [0, 3, 4, 1, 2]), table.space)
    same = spearmanr(table.column("cifar10", "valid_acc"), table.column("cifar100", "valid_acc"))
    other = spearmanr(moved.column("cifar10", "valid_acc"), moved.column("cifar100", "valid_acc"))
    assert same.statistic > 0.9 and other.statistic < 0.5
    assert sorted(moved.column("cifar100", "test_acc")) == sorted(table.column("cifar100",
                                                                             "test_acc"))
    best = int(np.argmax(moved.column("cifar100", "test_acc")))
    assert moved.archs[best] != table.archs[int(np.argmax(table.column("cifar100", "test_acc")))]


def test_bad_permutations_and_incomplete_tables_get_one_error(data):
    with pytest.raises(ArgumentError, match="expected a permutation of each decision's"):
        relabel_ops(data, SPACE, "b", [0, 0, 1])
    with pytest.raises(TableError, match="lacks the relabelled architecture"):
        relabel_ops(data.slice(0, 20), SPACE, "b", [2, 0, 1])
    with pytest.raises(TableError, match="no metric columns of dataset 'c'"):
        relabel_ops(data, SPACE, "c", [2, 0, 1])


def test_a_monotone_transform_keeps_the_ranking_and_refuses_one_that_does_not(data):
    stretched = BenchmarkTable(transform_metric(data, "b", lambda v: 100 * (v / 100) ** 0.7),
                               SPACE)
    before = BenchmarkTable(data, SPACE)
    assert np.array_equal(np.argsort(stretched.column("b", "valid_acc")),
                          np.argsort(before.column("b", "valid_acc")))
    assert stretched.column("b", "valid_acc").max() > before.column("b", "valid_acc").max()
    only_valid = BenchmarkTable(transform_metric(data, "b", lambda v: v + 5, ["valid_acc"]),
                                SPACE)
    assert np.array_equal(only_valid.column("b", "test_acc"), before.column("b", "test_acc"))
    with pytest.raises(ArgumentError, match="must map b_valid_acc increasingly"):
        transform_metric(data, "b", lambda v: -v)
    noisy = synthetic_table(SPACE, 27, seed=0, runs=2)
    shifted = transform_metric(noisy, "syn", lambda v: v + 1)
    assert np.allclose(shifted.column("syn_valid_acc@1").to_numpy(),
                       noisy.column("syn_valid_acc@1").to_numpy() + 1)
    assert isinstance(shifted, pa.Table)
