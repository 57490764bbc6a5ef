"""Search spaces: conformance over every space, string formats, networks and NB201 costs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from raynas.spaces import (
    CustomSpace,
    DARTSSpace,
    NB201Space,
    SearchSpace,
    TransNASMicroSpace,
    get_space,
)

SPACES = {
    "nb201": NB201Space,
    "darts": DARTSSpace,
    "transnas_micro": TransNASMicroSpace,
    "custom": lambda: CustomSpace("toy", {"depth": [2, 4, 8], "act": ["relu", "gelu"], "w": [1]}),
}


@pytest.fixture(params=sorted(SPACES))
def space(request) -> SearchSpace:
    return SPACES[request.param]()


def test_sample_is_valid_and_seeded(space):
    a = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    b = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    assert a == b
    for arch in a:
        assert space.validate(arch) == arch


def test_string_round_trip(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.from_str(space.to_str(arch)) == arch


def test_mutate_changes_exactly_one_decision(space):
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    if not space.neighbors(arch):
        pytest.skip("space too small to mutate every decision")
    for _ in range(20):
        child = space.mutate(arch, rng)
        assert sum(x != y for x, y in zip(arch, child)) == 1
        assert space.validate(child) == child


def test_neighbors_are_all_single_edits(space):
    arch = space.sample(np.random.default_rng(2))
    neighbors = space.neighbors(arch)
    assert len(neighbors) == sum(k - 1 for k in space.num_choices)
    assert len(set(neighbors)) == len(neighbors)
    assert all(sum(x != y for x, y in zip(arch, n)) == 1 for n in neighbors)


def test_encode_is_one_hot_per_decision(space):
    arch = space.sample(np.random.default_rng(4))
    code = space.encode(arch)
    assert code.shape == (sum(space.num_choices),)
    assert code.sum() == len(space.decisions)
    offsets = np.cumsum([0, *space.num_choices])
    for i, choice in enumerate(arch):
        assert code[offsets[i] + choice] == 1


@pytest.mark.parametrize("bad", ["", "garbage", "|||", "|a~0|+|b~0|", "x+y+z"])
def test_malformed_strings_raise_value_error(space, bad):
    with pytest.raises(ValueError):
        space.from_str(bad)


def test_validate_rejects_wrong_length_and_range(space):
    with pytest.raises(ValueError, match="expected"):
        space.validate((0,))
    with pytest.raises(ValueError, match="out of range"):
        space.validate(tuple(k for k in space.num_choices))


def test_registry_suggests_close_names():
    assert get_space("nb201").size == 5**6
    with pytest.raises(ValueError, match="did you mean 'nb201'"):
        get_space("nb210")


# ------------------------------------------------------------------ NB201
NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def test_nb201_string_format_matches_the_benchmark():
    space = NB201Space()
    arch = space.from_str(NB201_CELL)
    assert [space.ops[i] for i in arch] == [
        "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "none", "nor_conv_3x3"
    ]
    assert space.to_str(arch) == NB201_CELL


def test_nb201_unknown_op_is_named():
    with pytest.raises(ValueError, match="conv_7x7.*did you mean"):
        NB201Space().from_str(NB201_CELL.replace("nor_conv_1x1", "conv_7x7"))


def test_nb201_wrong_input_index_is_named():
    with pytest.raises(ValueError, match="expected '<op>~1'"):
        NB201Space().from_str(NB201_CELL.replace("nor_conv_3x3~1", "nor_conv_3x3~0"))


def _nb201(ops: str) -> tuple[int, ...]:
    space = NB201Space()
    return tuple(space.ops.index(op) for op in ops.split())


@pytest.mark.parametrize(
    ("ops", "params", "flops"),
    [
        # the published extremes (shared/benchmarks/README.md)
        ("none none none none none none", 0.0733, 7.78),
        ("skip_connect none skip_connect none skip_connect skip_connect", 0.0733, 7.78),
        ("nor_conv_3x3 " * 6, 1.5315, 220.1),
        # hand-computed mixed cells: one 3x3 edge adds 5*(9C^2 + 2C) params over
        # C = 16, 32, 64 and 9 * C^2 * HW = 2,359,296 multiply-adds per cell
        ("nor_conv_3x3 none none none none none", 0.316346, 43.17248),
        # one 1x1 edge: 5*(C^2 + 2C) params, C^2 * HW = 262,144 multiply-adds per cell
        ("none none nor_conv_1x1 avg_pool_3x3 none none", 0.073306 + 0.028000, 7.78304 + 3.93216),
    ],
)
def test_nb201_cost_matches_published_and_hand_computed_figures(ops, params, flops):
    cost = NB201Space().cost(_nb201(ops), num_classes=10, input_size=32)
    assert cost.params == pytest.approx(params, rel=1e-3)
    assert cost.flops == pytest.approx(flops, rel=1e-2)


def test_nb201_network_forward_and_latency():
    import torch

    space = NB201Space()
    arch = space.from_str(NB201_CELL)
    model = space.build(arch, num_classes=7, in_channels=1)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 7)
    cost = space.cost(arch, num_classes=7, input_size=16, in_channels=1, measure_latency=True)
    assert cost.latency_ms > 0


# -------------------------------------------------------------- TransNAS
def test_transnas_string_format():
    space = TransNASMicroSpace()
    arch = space.from_str("64-41414-3_13_333")
    assert arch == (3, 1, 3, 3, 3, 3)
    assert space.to_str(arch) == "64-41414-3_13_333"
    with pytest.raises(ValueError, match="macro"):
        space.from_str("32-41414-3_13_333")
    with pytest.raises(ValueError, match="out of range"):
        space.from_str("64-41414-4_13_333")


def test_transnas_network_follows_the_macro_code():
    import torch

    space = TransNASMicroSpace(macro="8-1234")
    model = space.build((3, 1, 2, 0, 3, 1), num_classes=5)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    # two resolution halvings (3 and 4) and two channel doublings (2 and 4): 8 -> 32 channels
    assert model.head.classifier.in_features == 32


# ------------------------------------------------------------------ DARTS
def test_darts_has_normal_and_reduction_edges():
    space = DARTSSpace()
    assert len(space.decisions) == 28
    assert all(k == 8 for k in space.num_choices)
    assert "none" in space.ops
    assert space.decisions[0].name == "normal_2<-0"
    assert space.decisions[14].name == "reduce_2<-0"


def test_darts_network_runs_with_none_edges():
    import torch

    space = DARTSSpace(channels=8, layers=5)
    arch = space.sample(np.random.default_rng(0))
    arch = (0,) * 14 + arch[14:]  # a normal cell made only of 'none'
    model = space.build(arch, num_classes=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert space.cost(arch).params > 0


def test_darts_bad_cell_name():
    space = DARTSSpace()
    text = space.to_str(space.sample(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="reduce"):
        space.from_str(text.replace("reduce:", "reduction:"))


# ----------------------------------------------------------------- custom
def test_custom_space_from_yaml(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("name: mine\ndecisions:\n  depth: [2, 4, 8]\n  optimizer: [sgd, adam]\n")
    space = get_space(str(path))
    assert space.name == "mine"
    assert space.from_str("|depth=8|optimizer=sgd|") == (2, 0)
    with pytest.raises(ValueError, match="did you mean 'adam'"):
        space.from_str("|depth=8|optimizer=adamw|")


@pytest.mark.parametrize(
    "spec",
    [
        {"decisions": {}},
        {"decisions": {"a": "xyz"}},
        {"decisions": {"a|b": [1, 2]}},
        {"decisions": {"a": [1, 1]}},
        {"name": "no decisions"},
    ],
)
def test_custom_space_rejects_bad_specs(spec):
    with pytest.raises(ValueError):
        CustomSpace.from_dict(spec)


def test_custom_space_has_no_network():
    from raynas.errors import RaynasError

    with pytest.raises(RaynasError, match="no network builder"):
        SPACES["custom"]().build((0, 0, 0), num_classes=10)


# ------------------------------------------------------------- properties
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def space_and_arch(draw):
    space = SPACES[draw(st.sampled_from(sorted(SPACES)))]()
    arch = tuple(draw(st.integers(0, k - 1)) for k in space.num_choices)
    return space, arch


@settings(max_examples=200, deadline=None)
@given(space_and_arch())
def test_every_architecture_round_trips_and_encodes(pair):
    space, arch = pair
    assert space.from_str(space.to_str(arch)) == arch
    code = space.encode(arch)
    assert code.sum() == len(arch)
    for neighbor in space.neighbors(arch)[:3]:  # the neighbourhood relation is symmetric
        assert arch in space.neighbors(neighbor)


def test_cost_models_are_cached_per_space_and_shape(tmp_path, monkeypatch):
    """The second model of the same (space, options, shape) builds no network, in this
    process or from the JSON file in a new one; another shape or width is its own entry;
    a corrupt file is recomputed."""
    import raynas.spaces.cost as cost
    from raynas.spaces import NB201Space
    from raynas.spaces.cost import LinearCostModel

    monkeypatch.setenv("RAYNAS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cost, "_COSTS", {})
    space = NB201Space(channels=4, cells_per_stage=1)
    first = LinearCostModel(space, num_classes=10, input_size=8)
    (file,) = (tmp_path / "costs").glob("*.json")
    archs = [space.sample(np.random.default_rng(i)) for i in range(20)]

    def no_build(*args, **kwargs):
        raise AssertionError("built a network")

    monkeypatch.setattr(NB201Space, "cost", no_build)
    again = LinearCostModel(NB201Space(channels=4, cells_per_stage=1), 10, 8)
    monkeypatch.setattr(cost, "_COSTS", {})  # a new process: only the file is left
    from_file = LinearCostModel(NB201Space(channels=4, cells_per_stage=1), 10, 8)
    for model in (again, from_file):
        np.testing.assert_array_equal(model.params(archs), first.params(archs))
        np.testing.assert_array_equal(model.flops(archs), first.flops(archs))
    with pytest.raises(AssertionError, match="built a network"):
        LinearCostModel(NB201Space(channels=8, cells_per_stage=1), 10, 8)  # another width
    with pytest.raises(AssertionError, match="built a network"):
        LinearCostModel(space, num_classes=100, input_size=8)  # another shape
    monkeypatch.undo()
    monkeypatch.setenv("RAYNAS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cost, "_COSTS", {})
    file.write_text('{"base": [1.0], "deltas": "not numbers"}')
    mended = LinearCostModel(NB201Space(channels=4, cells_per_stage=1), 10, 8)
    np.testing.assert_array_equal(mended.params(archs), first.params(archs))
    assert len(json.loads(file.read_text())["deltas"]) == space.encoding_size


def test_user_spaces_are_never_cost_cached(tmp_path, monkeypatch):
    from raynas.spaces import NB201Space
    from raynas.spaces.cost import _cost_key

    class Mine(NB201Space):  # a user's subclass: their code, maybe changed tomorrow
        pass

    assert _cost_key(Mine(), {"num_classes": 10}) is None
    assert _cost_key(NB201Space(), {"num_classes": 10}) is not None


def test_isomorphic_nb201_cells_share_a_graph_and_are_marked_on_a_front():
    import pyarrow as pa

    from raynas.objectives.fronts import mark_isomorphic
    from raynas.spaces import NB201Space

    space = NB201Space()
    key = lambda text: space.graph_key(space.from_str(text))  # noqa: E731
    conv_then_skip = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
    # the same through node 2 (nodes swapped), plus an edge out of a node nothing reaches
    swapped = "|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"
    other_op = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
    chained = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    assert key(conv_then_skip) == key(swapped)
    assert len({key(conv_then_skip), key(other_op), key(chained)}) == 3
    assert key("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|") == "zero"
    # 1 -> 2 joins the nodes: no swap
    assert key("|skip_connect~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|") != key(
        "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|skip_connect~2|")
    front = pa.table({"arch": [conv_then_skip, swapped, other_op], "valid_acc": [1.0, 2.0, 3.0]})
    marked = mark_isomorphic(front)
    assert marked["isomorphic"].to_pylist() == [True, True, False]
    assert marked["cell_graph"][0] == marked["cell_graph"][1]
    darts = pa.table({"arch": ["normal:|x|"], "valid_acc": [1.0]})
    assert mark_isomorphic(darts).column_names == ["arch", "valid_acc"]  # not NB201: unchanged


@pytest.mark.parametrize("space", [NB201Space(), CustomSpace("m", {"a": [1, 2, 3], "b": [0, 1],
                                                                      "c": list("wxyz")})],
                         ids=["nb201", "custom"])
def test_mutate_draws_what_a_uniform_pick_of_the_neighbours_draws(space):
    """The fast path (no neighbour list) gives the list's draw, so seeded searches
    reproduce the figures recorded before it."""
    for seed in range(30):
        arch = space.sample(np.random.default_rng(seed))
        fast, slow = np.random.default_rng(seed), np.random.default_rng(seed)
        for _ in range(10):
            neighbours = space.neighbors(arch)
            expected = neighbours[int(slow.integers(len(neighbours)))]
            arch = space.mutate(arch, fast)
            assert arch == expected


def test_validate_takes_the_fast_path_only_for_plain_valid_tuples():
    space = NB201Space()
    assert space.validate((0, 1, 2, 3, 4, 0)) == (0, 1, 2, 3, 4, 0)
    assert space.validate([np.int64(1)] * 6) == (1,) * 6
    for bad in [(True, 0, 0, 0, 0, 0), (5, 0, 0, 0, 0, 0), (0,) * 5, (-1, 0, 0, 0, 0, 0)]:
        with pytest.raises((ValueError, TypeError)):
            space.validate(bad)
    constrained = CustomSpace("c", {"a": [1, 2]}, constraint=lambda arch: arch["a"] == 1)
    with pytest.raises(ValueError, match="violates the space's constraints"):
        constrained.validate((1,))
