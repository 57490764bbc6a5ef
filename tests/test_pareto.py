"""Pareto maths against hand-computed cases; the exact cost model; a table's true front."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.objectives.pareto import dominates, hypervolume, non_dominated, non_dominated_sort
from raynas.spaces import DARTSSpace, NB201Space, TransNASMicroSpace
from raynas.spaces.cost import LinearCostModel

MAX_MIN = ["max", "min"]  # (accuracy, params)


def test_dominance_respects_directions():
    assert dominates([90, 1.0], [85, 1.0], MAX_MIN)
    assert dominates([90, 0.5], [90, 1.0], MAX_MIN)
    assert not dominates([90, 1.0], [90, 1.0], MAX_MIN)  # equal points do not dominate
    assert not dominates([90, 2.0], [85, 1.0], MAX_MIN)  # a trade-off
    assert dominates([1.0, 1.0], [2.0, 2.0], ["min", "min"])


def test_non_dominated_mask_keeps_trade_offs_and_duplicates():
    points = [[90, 1.5], [85, 0.5], [80, 1.0], [85, 0.5], [70, 0.5]]
    assert non_dominated(points, MAX_MIN).tolist() == [True, True, False, True, False]


def test_non_dominated_sort_peels_fronts():
    points = [[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [6, 6]]  # minimise both
    fronts = non_dominated_sort(points, ["min", "min"])
    assert [sorted(f.tolist()) for f in fronts] == [[0, 1, 2], [3], [4], [5]]


def test_hypervolume_2d_by_hand():
    # max accuracy, min params; reference (0, 2): 85 x (1.5 - 0.5) + 90 x (2 - 1.5)
    points = [[90.0, 1.5], [85.0, 0.5], [80.0, 1.0]]
    assert hypervolume(points, MAX_MIN, [0.0, 2.0]) == pytest.approx(85 * 1.0 + 90 * 0.5)


def test_hypervolume_ignores_points_beyond_the_reference():
    assert hypervolume([[90.0, 3.0]], MAX_MIN, [0.0, 2.0]) == 0.0
    assert hypervolume([], MAX_MIN, [0.0, 2.0]) == 0.0


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([[0.5, 0.5, 0.5]], 0.125),
        # two boxes of 0.25 overlapping in a cube of 0.125
        ([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]], 0.375),
        ([[0.5, 0.5, 0.5], [0.6, 0.6, 0.6]], 0.125),  # the dominated point adds nothing
    ],
)
def test_hypervolume_3d_by_hand(points, expected):
    assert hypervolume(points, ["min"] * 3, [1, 1, 1]) == pytest.approx(expected)


def test_hypervolume_4d_by_hand():
    assert hypervolume([[0.5] * 4], ["min"] * 4, [1] * 4) == pytest.approx(0.0625)
    # two points: 0.5^4 each, overlapping in a 4-D box of 0.25 x 0.5 x 0.5 x 0.5
    points = [[0.5, 0.5, 0.5, 0.5], [0.75, 0.5, 0.5, 0.5]]
    assert hypervolume(points, ["min"] * 4, [1] * 4) == pytest.approx(0.0625)


def test_hypervolume_is_invariant_to_directions():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (20, 3))
    as_min = hypervolume(points, ["min"] * 3, [1, 1, 1])
    flipped = points * np.array([-1, 1, -1])
    assert hypervolume(flipped, ["max", "min", "max"], [-1, 1, -1]) == pytest.approx(as_min)


def test_hypervolume_refuses_more_than_four_objectives():
    with pytest.raises(ValueError, match="up to 4 objectives"):
        hypervolume([[0.5] * 5], ["min"] * 5, [1] * 5)


def test_bad_directions_and_shapes():
    with pytest.raises(ValueError, match="directions"):
        non_dominated([[1, 2]], ["max", "smallest"])
    with pytest.raises(ValueError, match="2 objectives per point but 3 directions"):
        non_dominated([[1, 2]], ["max", "min", "min"])


# ---------------------------------------------------------------- cost model
@pytest.mark.parametrize(
    "space",
    [NB201Space(), NB201Space(channels=8, cells_per_stage=2), DARTSSpace(channels=4, layers=3),
     TransNASMicroSpace(macro="8-1234")],
    ids=["nb201", "nb201-small", "darts", "transnas"],
)
def test_linear_cost_model_is_exact(space):
    model = LinearCostModel(space, num_classes=10, input_size=32)
    rng = np.random.default_rng(5)
    archs = [space.sample(rng) for _ in range(6)]
    direct = [space.cost(a, num_classes=10, input_size=32) for a in archs]
    assert model.params(archs) == pytest.approx([c.params for c in direct], rel=1e-9)
    assert model.flops(archs) == pytest.approx([c.flops for c in direct], rel=1e-9)


# ---------------------------------------------------------------- table front
@pytest.mark.parametrize("params_from", ["table", "model"])
def test_nb201_true_front(params_from, nb201_table, table_path, tmp_path):
    """The true front uses the table's own params column; a table without one gets the
    cost model's params (the two differ on 150 of 15,625 cells of the shared table)."""
    import pyarrow.parquet as pq

    from raynas.objectives.fronts import table_front
    from raynas.tables import BenchmarkTable

    if params_from == "model":
        data = pq.read_table(table_path)
        pq.write_table(data.drop_columns(["params"]), tmp_path / "no_params.parquet")
        nb201_table = BenchmarkTable.load(tmp_path / "no_params.parquet")
        assert "params" not in nb201_table.costs("cifar10")
        params = LinearCostModel(nb201_table.space).params(nb201_table.archs)
    else:
        params = nb201_table.column("cifar10", "params")
        model = LinearCostModel(nb201_table.space).params(nb201_table.archs)
        assert 0 < np.sum(~np.isclose(params, model)) < 200  # mostly the same counts
    front = table_front(nb201_table, "cifar10")
    assert front.reference == pytest.approx((0.0, 1.5315), abs=1e-4)  # the published maximum
    all_points = np.column_stack([nb201_table.column("cifar10", "test_acc"), params])
    for acc, params in front.points:  # brute force: nothing in the table dominates it
        better = (all_points[:, 0] >= acc) & (all_points[:, 1] <= params)
        strictly = (all_points[:, 0] > acc) | (all_points[:, 1] < params)
        assert not np.any(better & strictly)
    assert front.points[-1, 0] == pytest.approx(nb201_table.best("cifar10"))
    # isomorphic cells share accuracy and size, so points repeat; the distinct ones
    # trade accuracy for size strictly
    distinct = np.unique(front.points, axis=0)
    assert np.all(np.diff(distinct[:, 0]) > 0) and np.all(np.diff(distinct[:, 1]) > 0)
    assert front.hypervolume == pytest.approx(
        hypervolume(all_points, MAX_MIN, front.reference)
    )


def test_tabular_results_carry_the_cost_model(nb201_table):
    """The model supplies the costs the table lacks (FLOPs); params stay the table's."""
    from raynas.evaluators import TabularEvaluator

    evaluator = TabularEvaluator(nb201_table, "cifar10",
                                 cost_model=LinearCostModel(nb201_table.space))
    arch = (1, 2, 2, 1, 2, 4)  # a cell whose recorded params (0.1293) are not the model's
    result, other = evaluator.evaluate([(3, 3, 3, 3, 3, 3), arch])
    assert result.metrics["params"] == pytest.approx(1.5315, abs=1e-4)
    assert result.metrics["flops"] == pytest.approx(220.1, abs=0.1)
    assert "valid_acc" in result.metrics and "test_acc" in result.metrics
    assert other.metrics["params"] == pytest.approx(0.129306)
    assert LinearCostModel(nb201_table.space).params([arch])[0] == pytest.approx(0.157306)


def test_search_front_is_chosen_on_validation_and_scored_on_test(nb201_table, tmp_path):
    import pyarrow.parquet as pq

    from raynas.evaluators import TabularEvaluator
    from raynas.objectives.fronts import FrontSpec, front_hypervolume, front_table, table_front
    from raynas.policies import make_policy
    from raynas.search import Budget, Search
    from raynas.tracking import MlflowTracker

    truth = table_front(nb201_table, "cifar10")
    spec = FrontSpec((("valid_acc", "max"), ("params", "min")), ("test_acc", "params"),
                     truth.reference)
    evaluator = TabularEvaluator(nb201_table, "cifar10",
                                 cost_model=LinearCostModel(nb201_table.space))
    policy = make_policy("random", nb201_table.space, seed=0)
    tracker = MlflowTracker(tmp_path, front=spec, true_front=truth.points)
    result = Search(nb201_table.space, policy, evaluator, Budget(max_queries=150),
                    out_dir=tmp_path, callbacks=[tracker]).run()
    front = front_table(result.history, spec)
    chosen = np.column_stack([front["valid_acc"].to_numpy(), front["params"].to_numpy()])
    evaluated = np.column_stack([result.history["valid_acc"].to_numpy(),
                                 result.history["params"].to_numpy()])
    for point in chosen:  # nothing evaluated dominates a front member on validation
        assert not any(dominates(other, point, MAX_MIN) for other in evaluated)
    volume = front_hypervolume(result.history, spec)
    assert 0 < volume <= truth.hypervolume  # scored on test, never above the true front
    assert pq.read_table(tmp_path / "pareto.parquet").num_rows == front.num_rows
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    import mlflow

    from raynas.tracking import default_uri

    client = mlflow.MlflowClient(default_uri(tmp_path))
    assert client.get_metric_history(tracker.run_id, "hypervolume")[-1].value == pytest.approx(
        volume)
    assert {"pareto.parquet", "pareto.png"} <= {a.path for a in client.list_artifacts(
        tracker.run_id)}


def test_hypervolume_curve_matches_the_front_of_every_prefix():
    import pyarrow as pa

    from raynas.objectives.fronts import FrontSpec, front_hypervolume, hypervolume_curve

    rng = np.random.default_rng(3)
    n = 120
    status = np.where(rng.random(n) < 0.1, "failed", "ok")
    cached = rng.random(n) < 0.2
    table = pa.table({
        "cached": cached, "status": status, "valid_acc": rng.uniform(0, 100, n),
        "test_acc": rng.uniform(0, 100, n), "params": rng.uniform(0, 1.5, n),
    })
    spec = FrontSpec((("valid_acc", "max"), ("params", "min")), ("test_acc", "params"),
                     (0.0, 1.5))
    curve = hypervolume_curve(table, spec)
    assert len(curve) == int((~cached).sum())  # one value per real query
    real = np.flatnonzero(~cached)
    for k in (1, 7, 40, len(real)):
        prefix = table.slice(0, real[k - 1] + 1)
        assert curve[k - 1] == pytest.approx(front_hypervolume(prefix, spec))


def test_a_table_whose_params_disagree_with_the_model_is_followed(nb201_table, tmp_path):
    """A schema-valid table of 500 cells whose params are unrelated to the network's
    (reversed ranks): its true front, reference point and results follow the table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raynas.evaluators import TabularEvaluator
    from raynas.objectives.fronts import table_front
    from raynas.tables import BenchmarkTable

    rng = np.random.default_rng(4)
    rows = rng.choice(len(nb201_table.archs), 500, replace=False)
    model = LinearCostModel(nb201_table.space).params([nb201_table.archs[i] for i in rows])
    params = 3.0 - model  # the largest network is the "smallest" here
    acc = rng.uniform(40, 90, 500)
    strings = [nb201_table.space.to_str(nb201_table.archs[i]) for i in rows]
    pq.write_table(pa.table({"arch_str": strings, "toy_valid_acc": acc, "toy_test_acc": acc,
                             "params": params}), tmp_path / "toy.parquet")
    table = BenchmarkTable.load(tmp_path / "toy.parquet")
    front = table_front(table, "toy", "test_acc", "params")
    assert front.reference == (0.0, pytest.approx(params.max()))
    better = (acc[:, None] >= front.points[:, 0]) & (params[:, None] <= front.points[:, 1])
    strictly = (acc[:, None] > front.points[:, 0]) | (params[:, None] < front.points[:, 1])
    assert not np.any(better & strictly)  # non-dominated in the table's own params
    evaluator = TabularEvaluator(table, "toy", cost_model=LinearCostModel(table.space))
    (result,) = evaluator.evaluate([table.space.from_str(strings[0])])
    assert result.metrics["params"] == pytest.approx(params[0])
    assert "flops" in result.metrics  # what the table lacks is modelled
