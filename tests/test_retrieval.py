"""Architecture retrieval (``nas similar``): WL-kernel nearest neighbours of a stored trial, on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner
from store_fixtures import postgres_url, storage_url  # noqa: F401

import nas
from nas.cli import main
from nas.core import SPACES, Architecture, ConfigError
from nas.core.trial import Trial, TrialState
from nas.core.wl import wl_features
from nas.retrieval import IndexCache, find_similar
from nas.store import StudyNotFoundError, TrialNotFoundError, open_readonly
from search_spaces import get_space
from search_spaces.nb201 import EDGE_NAMES
from search_spaces.nb201.space import Nb201Space

NB201 = get_space("nb201")


def cell(*ops: str) -> Architecture:
    return Architecture("nb201", dict(zip(EDGE_NAMES, ops, strict=True)))


QUERY = cell("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "skip_connect")
NEAR = QUERY.replace(**{EDGE_NAMES[5]: "avg_pool_3x3"})
FAR = cell("avg_pool_3x3", "none", "avg_pool_3x3", "none", "none", "avg_pool_3x3")


def finished(arch: Architecture, value: float) -> Trial:
    return Trial(number=0, arch=arch, state=TrialState.COMPLETE, values={"val_accuracy": value})


def kernel(a: Architecture, b: Architecture) -> float:
    """The normalised WL kernel computed straight from the two feature counts."""
    fa, fb = wl_features(NB201.to_graph(a)), wl_features(NB201.to_graph(b))
    dot = sum(count * fb.get(feature, 0) for feature, count in fa.items())
    return dot / np.sqrt(sum(c * c for c in fa.values()) * sum(c * c for c in fb.values()))


@pytest.fixture
def store(storage_url: str) -> str:  # noqa: F811
    """Study ``a`` (the query as trial 0, a near and a far cell, 20 random cells), ``b`` and ``other``."""
    a = nas.create_study("a", storage_url, space="nb201", objectives={"val_accuracy": "max"})
    others = [NB201.sample(seed) for seed in range(20)]
    a.add_trials([finished(QUERY, 70.0), finished(FAR, 10.0), finished(NEAR, 60.0)])
    a.add_trials([finished(arch, float(i)) for i, arch in enumerate(others)])
    b = nas.create_study("b", storage_url, space="nb201", objectives={"val_accuracy": "max"})
    b.add_trials([finished(FAR, 11.0), finished(QUERY, 71.0)])
    fbnet = get_space("fbnet")
    other = nas.create_study("other", storage_url, space="fbnet", objectives={"val_accuracy": "max"})
    other.add_trials([finished(fbnet.sample(0), 50.0)])
    return storage_url


def test_the_query_comes_first_then_its_neighbours_by_the_wl_kernel(store: str, tmp_path: Path) -> None:
    with open_readonly(store) as reader:
        found = find_similar(reader, "a", 0, k=23, cache=IndexCache(tmp_path))
    assert (found[0].study, found[0].trial.number, found[0].similarity) == ("a", 0, 1.0)
    assert found[1].trial.arch == NEAR and found[1].trial.values == {"val_accuracy": 60.0}
    assert {m.study for m in found} == {"a"} and len(found) == 23
    # Every similarity is the normalised WL kernel of the two cells, and the order follows it.
    for match in found:
        assert match.similarity == pytest.approx(kernel(QUERY, match.trial.arch), abs=1e-9)
    assert [m.similarity for m in found] == sorted((m.similarity for m in found), reverse=True)


def test_all_studies_adds_studies_of_the_same_space_only(store: str, tmp_path: Path) -> None:
    with open_readonly(store) as reader:
        found = find_similar(reader, "a", 0, k=3, all_studies=True, cache=IndexCache(tmp_path))
        everything = find_similar(reader, "a", 0, k=1000, all_studies=True, cache=IndexCache(tmp_path))
    assert [(m.study, m.trial.number) for m in found[:2]] == [("a", 0), ("b", 1)]
    assert found[1].similarity == pytest.approx(1.0) and found[2].trial.arch == NEAR
    assert {m.study for m in everything} == {"a", "b"} and len(everything) == 25


def test_the_index_is_cached_in_a_file_and_follows_the_store(store: str, tmp_path: Path) -> None:
    with open_readonly(store) as reader:
        first = find_similar(reader, "a", 2, k=5, cache=IndexCache(tmp_path))
        files = list(tmp_path.glob("*.npz"))
        assert len(files) == 1
        # A cold cache (another process) reads the file; the results are the same.
        cold = find_similar(reader, "a", 2, k=5, cache=IndexCache(tmp_path))
        assert [(m.trial.number, m.similarity) for m in cold] == [
            (m.trial.number, m.similarity) for m in first
        ]
        # A new architecture is appended to the cached index and found.
        new = NEAR.replace(**{EDGE_NAMES[0]: "nor_conv_1x1"})
        nas.load_study("a", store).add_trials([finished(new, 65.0)])
        cache = IndexCache(tmp_path)
        again = {m.trial.arch: m.similarity for m in find_similar(reader, "a", 2, k=30, cache=cache)}
        assert len(again) == 24 and again[new] == pytest.approx(kernel(NEAR, new))
        stamp = reader.catalog_stamp("nb201")
        assert len(cache.index(reader, reader.get_study("a"), NB201)) == stamp.count


def test_a_stale_cache_file_of_another_store_at_the_same_url_is_rebuilt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    nas.create_study("s", url, space="nb201").add_trials([finished(QUERY, 1.0), finished(NEAR, 2.0)])
    with open_readonly(url) as reader:
        assert find_similar(reader, "s", 0, k=2, cache=IndexCache(tmp_path / "cache"))[1].trial.arch == NEAR
    (tmp_path / "store.db").unlink()
    nas.create_study("s", url, space="nb201").add_trials([finished(QUERY, 1.0), finished(FAR, 2.0)])
    with open_readonly(url) as reader:
        found = find_similar(reader, "s", 0, k=2, cache=IndexCache(tmp_path / "cache"))
    assert found[1].trial.arch == FAR and found[1].similarity == pytest.approx(kernel(QUERY, FAR))


class GraphlessSpace(Nb201Space):
    """NAS-Bench-201 decisions without a drawable graph (a plugin that returns an empty one)."""

    name = "nb201_graphless"

    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        return nx.DiGraph()


def test_bad_queries_are_clear_errors(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = IndexCache(tmp_path)
    with open_readonly(store) as reader:
        with pytest.raises(StudyNotFoundError, match="'missing'"):
            find_similar(reader, "missing", 0, cache=cache)
        with pytest.raises(TrialNotFoundError, match="no trial number 99"):
            find_similar(reader, "a", 99, cache=cache)
        for k in (0, 1001, True, 2.5):
            with pytest.raises(ConfigError, match=r"k=.* is not allowed; expected an integer in \[1, 1000\]"):
                find_similar(reader, "a", 0, k=k, cache=cache)  # type: ignore[arg-type]
    monkeypatch.setitem(SPACES._entries, GraphlessSpace.name, GraphlessSpace)
    space = GraphlessSpace()
    study = nas.create_study("flat", store, space=space)
    study.add_trials(
        [Trial(number=0, arch=Architecture(space.name, dict(QUERY.decisions)), state=TrialState.FAIL)]
    )
    with open_readonly(store) as reader, pytest.raises(ConfigError, match="nb201_graphless.*no graph"):
        find_similar(reader, "flat", 0, cache=cache)
    assert list(tmp_path.glob("*.npz")) == []  # refused before any index was built


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_cli_prints_a_table_or_json_and_exits_2_on_bad_input(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path))
    code, out = run("similar", "a", "0", "--k", "3", "--all-studies", "--storage", store, "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [(r["study"], r["number"]) for r in rows] == [("a", 0), ("b", 1), ("a", 2)]
    assert rows[2]["values"] == {"val_accuracy": 60.0} and rows[0]["similarity"] == 1.0
    assert rows[2]["genotype"] == json.loads(NEAR.to_json())
    code, out = run("similar", "a", "2", "--storage", store)
    assert code == 0 and "similar to trial 2" in out and "val_accuracy" in out
    code, out = run("similar", "a", "99", "--storage", store)
    assert code == 2 and "no trial number 99" in out
    code, out = run("similar", "nope", "0", "--storage", store)
    assert code == 2 and "'nope'" in out
