import pytest

from rhlab.knowledge.corpus import load_real_corpus, mix_corpus, stdlib_documents


def test_stdlib_corpus_is_real_text():
    docs = stdlib_documents()
    names = {d["name"] for d in docs}
    assert {"json", "argparse", "collections"} <= names
    assert len(docs) > 100
    js = next(d for d in docs if d["name"] == "json")
    assert "JSON" in js["text"] and js["source"] == "real:stdlib"
    assert len({d["id"] for d in docs}) == len(docs)


def test_user_files_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("alpha " * 100)
    (tmp_path / "b.jsonl").write_text('{"text": "beta beta"}\n{"text": "gamma"}\n')
    docs = load_real_corpus([str(tmp_path)])
    assert sorted(d["text"].split()[0] for d in docs) == ["alpha", "beta", "gamma"]
    with pytest.raises(FileNotFoundError):
        load_real_corpus([str(tmp_path / "nope*.txt")])


def _syn(n, size=100):
    return [{"id": f"s{i}", "text": "s" * size} for i in range(n)]


def _real(n, size=1000):
    return [{"id": f"r{i}", "text": "r" * size, "source": "real:x"} for i in range(n)]


@pytest.mark.parametrize("fraction", [1.0, 0.1, 0.01, 0.001])
def test_mix_hits_fraction(fraction):
    mix, st = mix_corpus(_syn(20), _real(3000), fraction, seed=1)
    assert st["achieved_fraction"] == pytest.approx(fraction, rel=0.1)
    assert st["synthetic_docs"] + st["real_docs"] == len(mix)
    assert sum(d["source"] == "synthetic" for d in mix) == st["synthetic_docs"]


def test_mix_drops_synthetic_when_real_text_is_short():
    mix, st = mix_corpus(_syn(100), _real(10), 0.01, seed=0)
    # 10k real chars support only ~101 synthetic chars = 1 document
    assert st["synthetic_docs"] == 1 and st["synthetic_docs_dropped"] == 99
    assert st["achieved_fraction"] == pytest.approx(0.01, rel=0.05)


def test_mix_by_docs_and_determinism():
    a, sa = mix_corpus(_syn(10), _real(200), 0.1, seed=3, by="docs")
    b, _ = mix_corpus(_syn(10), _real(200), 0.1, seed=3, by="docs")
    assert [d["id"] for d in a] == [d["id"] for d in b]
    assert sa["synthetic_docs"] == 10 and sa["real_docs"] == 90
    with pytest.raises(ValueError):
        mix_corpus(_syn(1), _real(1), 0)


def test_mix_with_uneven_real_docs_stays_close_to_target():
    import random

    rng = random.Random(0)
    real = [{"id": f"r{i}", "text": "r" * rng.choice([200, 5000, 40000]), "source": "real:x"} for i in range(400)]
    for f in (0.1, 0.01):
        _, st = mix_corpus(_syn(40, 1000), real, f, seed=2)
        assert st["achieved_fraction"] == pytest.approx(f, rel=0.05), st
