"""Golden bytes: ``reasonpipe gen`` writes the same file for every task and searcher at a fixed seed.

The MD5 of each file was taken at commit 7a3b5d5, before the architecture restructuring (issue 17), and every
commit since must give the same bytes: a change to a task's rules, a searcher, a grammar, the tokenizer or the
seed convention that alters a dataset fails here. When a change is meant to alter a dataset, regenerate the
table (``python tests/tasks/test_gen_golden.py`` prints it) and say why in the commit.

Run: ``python -m pytest -q tests/tasks/test_gen_golden.py``
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest

from reasonpipe.searchers import SEARCHERS, SearchOptions
from reasonpipe.searchers.gym import SEARCHERS as GYM_SEARCHERS
from reasonpipe.tasks import task_names
from reasonpipe.tracegen import GenRequest, generate

# (task, searcher) -> MD5 of `reasonpipe gen TASK --n N --searcher S --seed 7 --steps` (kbacktrack --k 2, beam
# --beam 3; N = 5 for sudoku, else 20).
GOLDEN: dict[tuple[str, str], str] = {
    ("countdown", "dfs"): "5ab4a7fc8132e5c253e531fe83239131",
    ("countdown", "bfs"): "0ba40f73f4a085c1b11a742bae3da865",
    ("countdown", "beam"): "aae9595a5ed8d620e084897a3c695582",
    ("countdown", "direct"): "4c51fddb7bd96345daf2e030c2efcea6",
    ("countdown", "kbacktrack"): "9c24f98c44e74f1a7de3223805f978dc",
    ("sudoku", "dfs"): "9413e1eaec1891befea316cea6e2886c",
    ("sudoku", "direct"): "0d1d40ef9cab960edead9ab2215fc322",
    ("sudoku", "kbacktrack"): "d71f7cd3202d75b84c54747c7d925f3d",
    ("reachability", "path"): "46ff6053d1f727097b8f2405eccb7397",
    ("reachability", "bfs"): "9a4cb9d53b50833d66ec0fbba3cfc540",
    ("reachability", "direct"): "480b1422726ba826ea00f31118afbd19",
    ("arc_1d", "direct"): "971a9fbb75b4d9075de0bb2e7fb4507d",
    ("arc_1d", "kbacktrack"): "fe6cf7d43bd7062e313eecf0a75b2938",
    ("list_functions", "direct"): "bb3ca1f84f097439995689d4bec0962a",
    ("list_functions", "kbacktrack"): "31a4bdbcb2dc50718106512475fad93f",
    ("color_cube_rotation", "direct"): "3d4d5f38eba4a9419de5453e1aae3da6",
    ("color_cube_rotation", "kbacktrack"): "75cf5465af6d0d70a765753049f8c3c1",
    ("zebra_puzzles", "direct"): "d3a6cd3ad3fa719f2acdb3a1d5535105",
    ("zebra_puzzles", "kbacktrack"): "5e0f12f1032370b58eadb50a1641722c",
    ("self_reference", "direct"): "1870f2de8398d5d8abfc832a6d9fb28c",
    ("self_reference", "kbacktrack"): "becf1f06f1017ff026f9df08a5e651c8",
    ("advanced_geometry", "direct"): "dfa20d0d70e3361ef9c15aed02bf8ca6",
    ("advanced_geometry", "kbacktrack"): "8ef7effce53c11cb0d4edbbe97bd1c88",
}


def gen_md5(task: str, searcher: str, out: Path) -> str:
    search = SearchOptions(k=2 if searcher == "kbacktrack" else 1, beam=3 if searcher == "beam" else 5)
    request = GenRequest(task=task, searcher=searcher, out=str(out), n=5 if task == "sudoku" else 20, seed=7,
                         search=search, steps=True)
    generate(request)
    return hashlib.md5(out.read_bytes()).hexdigest()


def test_every_task_and_searcher_is_covered() -> None:
    pairs = {(t, s) for t in task_names() for s in (SEARCHERS.get(t) or GYM_SEARCHERS)}
    assert pairs == set(GOLDEN)


@pytest.mark.parametrize(("task", "searcher"), sorted(GOLDEN))
def test_generated_bytes_are_unchanged(task: str, searcher: str, tmp_path: Path) -> None:
    assert gen_md5(task, searcher, tmp_path / "out.jsonl") == GOLDEN[(task, searcher)]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for task, searcher in sorted(GOLDEN):
            print(f'    ("{task}", "{searcher}"): "{gen_md5(task, searcher, Path(tmp) / "o.jsonl")}",')
