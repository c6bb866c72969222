"""Shared fixtures: the reference data in ../shared/data (skipped when absent) and scratch run roots."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# beside the repository, or beside a folder above it (mutation testing runs a copy of the tree inside it)
SHARED_DATA = next((p / "shared" / "data" for p in REPO.parents if (p / "shared" / "data").is_dir()),
                   REPO.parent / "shared" / "data")
GPT2_DIR = SHARED_DATA / "gpt2"
TINYSTORIES_SAMPLE = SHARED_DATA / "tinystories" / "train-sample.txt"


@pytest.fixture
def gpt2_dir():
    if not (GPT2_DIR / "vocab.json").exists():
        pytest.skip("needs ../shared/data/gpt2 (GPT-2 vocab.json and merges.txt)")
    return GPT2_DIR


@pytest.fixture
def tinystories_sample():
    if not TINYSTORIES_SAMPLE.exists():
        pytest.skip("needs ../shared/data/tinystories/train-sample.txt")
    return TINYSTORIES_SAMPLE


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty project root for one test's runs, data and movies."""
    monkeypatch.setenv("DUCKLING_ROOT", str(tmp_path))
    return tmp_path
