"""Pure parts of the dashboard: architecture drawings, charts, routes, downloads, the CLI wrapper."""

from __future__ import annotations

import json
import re

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

from dashboard import charts, downloads, graph
from dashboard.navigation import Route, parse_numbers, parse_route, route_params
from nas.cli import main
from nas.cli.dashboard import app_path, streamlit_command
from nas.core.architecture import Architecture
from nas.core.trial import Direction, Trial, TrialState
from search_spaces import get_space, list_spaces


def dot_labels(dot: str) -> list[str]:
    return re.findall(r'label="((?:[^"\\]|\\.)*)"', dot)


@pytest.mark.parametrize("name", list_spaces())
def test_every_space_is_drawn_with_its_ops_and_colours(name: str) -> None:
    space = get_space(name)
    arch = space.sample(np.random.default_rng(1))
    drawn = space.to_graph(arch)
    dot = graph.to_dot(drawn)
    assert dot.startswith("digraph G {") and dot.rstrip().endswith("}")
    visible = [line for line in dot.splitlines() if "->" in line and "invis" not in line]
    assert len(visible) == drawn.number_of_edges()
    ops = [d["op"] for *_, d in drawn.edges(data=True) if "op" in d] + [
        d["op"] for _, d in drawn.nodes(data=True) if "op" in d
    ]
    assert ops, f"{name}: the graph names no op"
    labels = "\n".join(dot_labels(dot))
    for op in ops:
        assert str(op) in labels
        assert graph.op_family(op).colour in dot
    assert graph.families_used(drawn)


def test_cells_are_boxed_and_chains_are_laid_out_by_stage() -> None:
    darts = get_space("darts")
    dot = graph.to_dot(darts.to_graph(darts.sample(np.random.default_rng(0))))
    assert dot.count("subgraph cluster_") == 2 and "normal cell" in dot and "reduce cell" in dot
    assert "rankdir=LR" in dot
    fbnet = get_space("fbnet")
    chain = fbnet.to_graph(fbnet.sample(np.random.default_rng(0)))
    dot = graph.to_dot(chain)
    rows = graph.stage_rows(chain)
    assert [n for row in rows for n in row] == list(nx.topological_sort(chain))
    for row in rows:  # one row per stage, each a run of consecutive layers
        assert len({chain.nodes[n].get("stage", n) for n in row}) == 1
    stages = {d["stage"] for _, d in chain.nodes(data=True) if "stage" in d}
    assert len(rows) >= len(stages) and any(len(row) > 1 for row in rows)
    assert dot.count("rank=same") == sum(1 for row in rows if len(row) > 1)
    assert dot.count("style=invis") == len(rows) - 1  # row starts stacked under each other
    assert "rankdir=TB" in dot


def test_chain_node_details_are_short() -> None:
    assert graph.node_details({"op": "attn", "channels": 128, "stride": 2, "heads": 4, "stage": 1}) == (
        "128 ch · stride 2 · 4 heads"
    )
    assert graph.node_details({"op": "k3_e1", "channels": 16, "stride": 1, "depth": 3}) == "16 ch · depth=3"


@pytest.mark.parametrize(
    "op, family",
    [
        ("none", "none"),
        ("skip_connect", "skip"),
        ("avg_pool_3x3", "pooling"),
        ("sep_conv_5x5", "convolution"),
        ("k5_e6_g2", "convolution"),
        ("attn", "attention"),
        ("input", "input/output"),
        ("mystery_op", "other"),
    ],
)
def test_op_families(op: str, family: str) -> None:
    assert graph.op_family(op).name == family


def test_differences_name_changed_edges_and_nodes() -> None:
    nb201 = get_space("nb201")
    a = nb201.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|")
    b = a.replace(**{"2<-1": "nor_conv_3x3"})
    assert graph.graph_differences(nb201.to_graph(a), nb201.to_graph(b)) == {(1, 2)}
    assert graph.graph_differences(nb201.to_graph(a), nb201.to_graph(a)) == set()
    dot = graph.to_dot(nb201.to_graph(a), {(1, 2)})
    marked = [line for line in dot.splitlines() if graph.HIGHLIGHT in line]
    assert len(marked) == 1 and "n1 -> n2" in marked[0]

    hybrid = get_space("hybrid")
    x = hybrid.sample(np.random.default_rng(0))
    names = [n for n in x if n.endswith(".width")]
    y = x.replace(**{names[0]: 2 if x[names[0]] != 2 else 1})
    changed = graph.graph_differences(hybrid.to_graph(x), hybrid.to_graph(y))
    assert changed == {names[0].split(".")[0]}  # only that block, not every later block's channels


def test_labels_are_quoted_safely() -> None:
    drawn = nx.DiGraph()
    drawn.add_edge("a", 'b"; evil=1; "', op='say "hi"\\')
    dot = graph.to_dot(drawn, title='t"itle')
    assert 'label="say \\"hi\\"\\\\"' in dot
    assert 'label="b\\"; evil=1; \\""' in dot  # the quote stays inside the label
    assert 'label="t\\"itle"' in dot


def test_progress_chart_extends_the_incumbent_to_the_last_trial() -> None:
    spec = charts.progress_chart(
        "val.acc", Direction.MAX, [(0, 1.0), (4, 3.0)], [(0, 1.0), (4, 3.0)], 9
    ).to_dict()
    best = spec["layer"][1]
    data = spec["datasets"][best["data"]["name"]]
    assert [(row["trial"], row["value"]) for row in data] == [(0, 1.0), (4, 3.0), (9, 3.0)]
    assert best["encoding"]["y"]["title"] == "val.acc (max)"


def test_pareto_chart_marks_the_front_and_shows_architectures() -> None:
    rows = [
        {"trial": 0, "x": 1.0, "y": 2.0, "pareto": True, "architecture": "arch-0"},
        {"trial": 1, "x": 0.5, "y": 3.0, "pareto": False, "architecture": "arch-1"},
    ]
    spec = charts.pareto_chart("acc", "lat", rows, {"acc": Direction.MAX, "lat": Direction.MIN}).to_dict()
    points = spec["layer"][1]
    data = spec["datasets"][points["data"]["name"]]
    assert {row["set"] for row in data} == {"Pareto front", "dominated"}
    assert any(t.get("field") == "architecture" for t in points["encoding"]["tooltip"])
    (pick,) = spec["params"]  # clicking a point selects its trial (the page opens it)
    assert pick["name"] == "pick" and pick["select"]["fields"] == ["trial"]


def test_alpha_metrics_are_split_from_curves_and_drawn_per_edge() -> None:
    curves = {
        "loss": [(0, 1.0)],
        "alpha/normal/2<-0/sep_conv_3x3": [(0, 0.2), (1, 0.4)],
        "alpha/normal/2<-0/skip_connect": [(0, 0.8), (1, 0.6)],
        "alpha/reduce/3<-1/none": [(0, 0.5)],
    }
    plain, alpha = charts.split_alpha(curves)
    assert plain == {"loss": [(0, 1.0)]}
    assert set(alpha) == {"normal/2<-0", "reduce/3<-1"}
    assert set(alpha["normal/2<-0"]) == {"sep_conv_3x3", "skip_connect"}
    spec = charts.alpha_chart(alpha).to_dict()
    assert spec["facet"]["field"] == "edge" and spec["spec"]["mark"]["type"] == "rect"
    assert len(spec["datasets"][spec["data"]["name"]]) == 5


def test_routes_round_trip_and_bad_parameters_fall_back() -> None:
    route = Route("compare", "s", compare=(3, 17))
    assert parse_route(route_params(route)) == route
    assert parse_route({"page": "trial", "study": "s", "trial": "4"}) == Route("trial", "s", trial=4)
    bad = parse_route({"page": "trial", "study": "s", "trial": "four"})
    assert bad.page == "trials" and bad.notes
    assert parse_route({"page": "trials"}).page == "studies"
    assert parse_numbers("3, 17 #42 x 3") == ((3, 17, 42), ["x"])


def test_genotype_download_is_the_architecture_json() -> None:
    arch = Architecture("nb201", (("1<-0", "none"),))
    trial = Trial(number=7, arch=arch, state=TrialState.FAIL, error="boom", study="s")
    found = downloads.genotype_download(trial, {"width": 2})
    payload = json.loads(found.data)
    assert Architecture.from_dict(payload["genotype"]) == arch
    assert payload["space_options"] == {"width": 2} and payload["trial"]["error"] == "boom"
    assert found.file_name == "genotype-trial7.json" and found.mime == "application/json"


def test_origin_names_retries_reuse_supernets_and_derived_cells_from_system_attrs() -> None:
    from dashboard.views.common import origin

    arch = Architecture("nb201", (("1<-0", "none"),))

    def made(system: dict, user: dict | None = None) -> Trial:
        return Trial(
            number=5, arch=arch, state=TrialState.COMPLETE, system_attrs=system, user_attrs=user or {}
        )

    assert origin(made({}, {"retry_of": 1, "kind": "supernet"})) is None  # users' keys are theirs
    assert origin(made({"retry_of": 1})) == "retry of #1"
    assert origin(made({"reused_from": {"study": "first", "trial": 4}})) == "reused from first #4"
    assert origin(made({"kind": "supernet", "method": "darts"})) == "supernet (darts)"
    derived = made({"kind": "derived", "method": "darts", "derived_from": 2, "retry_of": 3})
    assert origin(derived) == "derived from supernet #2 · retry of #3"
    assert origin(made({"workers": [["n", 1]]})) is None


def test_dashboard_command_runs_streamlit_on_localhost_by_default() -> None:
    command = streamlit_command(8600, "127.0.0.1")
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(app_path())
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.port"] == "8600" and options["--server.address"] == "127.0.0.1"
    assert options["--browser.gatherUsageStats"] == "false" and options["--server.headless"] == "true"
    assert app_path().name == "app.py" and app_path().is_file()
    help_text = CliRunner().invoke(main, ["dashboard", "--help"]).output
    assert "--storage" in help_text and "127.0.0.1" in help_text


def test_dashboard_command_refuses_a_bad_storage_url() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--storage", "mysql://x/y"])
    assert result.exit_code == 2 and "allowed" in result.output


def test_a_click_on_a_pareto_point_names_its_trial() -> None:
    from streamlit.elements.vega_charts import VegaLiteStateSerde

    from dashboard.views.trials import _picked_trial

    serde = VegaLiteStateSerde(["pick"])
    clicked = serde.deserialize(json.dumps({"selection": {"pick": [{"trial": 17}]}}))
    assert _picked_trial(clicked) == 17
    assert _picked_trial(serde.deserialize(None)) is None  # nothing selected yet
    assert _picked_trial(serde.deserialize(json.dumps({"selection": {"pick": []}}))) is None


def test_a_specialisation_study_is_drawn_per_device_with_budgets_front_and_picks() -> None:
    from dashboard.specialization import budget_rows, device_views, is_specialization

    space = get_space("fbnet", width_mult=0.25)
    rng = np.random.default_rng(0)

    def trial(
        number: int, kind: str, device: str, budget: float, ms: float, acc: float, **extra: object
    ) -> Trial:
        attrs = {
            "kind": kind,
            "device": device,
            "max_latency_ms": budget,
            "target": f"{device}<={budget:g}",
            **extra,
        }
        values = {"val_accuracy": acc, "latency_ms": ms}
        return Trial(number, space.sample(rng), TrialState.COMPLETE, values=values, system_attrs=attrs)

    trials = [
        trial(0, "candidate", "pixel3", 10.0, 9.0, 50.0),
        trial(1, "candidate", "pixel3", 10.0, 8.0, 55.0),  # dominates trial 0
        trial(2, "candidate", "pixel3", 20.0, 18.0, 60.0),
        trial(3, "specialized", "pixel3", 10.0, 8.0, 57.0, candidate=1),
        trial(4, "candidate", "eyeriss", 5.0, 4.0, 40.0),
        Trial(5, space.sample(rng), TrialState.PRUNED, system_attrs={"kind": "supernet"}),
    ]
    pixel3, eyeriss = device_views(trials)
    assert (pixel3.device, eyeriss.device) == ("pixel3", "eyeriss")
    assert [p["trial"] for p in pixel3.points if p["pareto"]] == [1, 2]
    assert [p["trial"] for p in pixel3.points if p["picked"]] == [1]
    assert budget_rows(pixel3) == [{"budget": 10.0, "selected": 3}, {"budget": 20.0, "selected": None}]
    chart = charts.device_chart(pixel3.points, budget_rows(pixel3)).to_dict()
    assert len(chart["layer"]) == 4  # budget rules, front, candidates, picks
    assert is_specialization({"specialize": {"targets": []}}) and not is_specialization({"name": "x"})
