"""Online prompt clusters and their merges."""

from __future__ import annotations

import numpy as np

from agentopt.routers.clusters import PromptClusters, merge_columns
from agentopt.routers.features import PromptHasher


def test_clusters_gather_prompts_of_one_template() -> None:
    h = PromptHasher()
    c = PromptClusters(2048, threshold=0.3)
    rng = np.random.default_rng(0)
    labels = []
    for i in range(60):
        if i % 2:
            text = f"How many chairs in {rng.integers(99)} rows of {rng.integers(99)}? Reply with a number."
        else:
            text = f"What is the capital of {rng.choice(['Peru', 'Chad', 'Laos'])}? A) x B) y. Reply with a letter."
        labels.append(c.assign(*h.transform(text)))
    assert len(set(labels[1::2])) == 1 and len(set(labels[0::2])) == 1
    assert labels[0] != labels[1]


def test_a_merge_pools_two_clusters_and_their_model_columns() -> None:
    h = PromptHasher()
    c = PromptClusters(2048, threshold=0.99)  # every prompt founds its own cluster
    texts = ["add 2 and 3", "add 4 and 5", "name a river", "name a city"]
    for t in texts:
        c.assign(*h.transform(t))
    assert c.counts.size == 4
    a, b, sim = c.closest_pair()
    assert 0 <= a < b and 0.0 < sim < 1.0
    total = c.sums.sum(axis=0).copy()
    last = c.merge(a, b)
    assert last == 3 and c.counts.size == 3 and c.counts.sum() == 4
    assert np.allclose(c.sums.sum(axis=0), total)  # nothing lost
    assert np.allclose(c.norms, np.linalg.norm(c.sums, axis=1))
    # the model side: columns a and b pooled, the last column moved into b
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    gram = np.einsum("ni,nj->ij", x, x)[None].repeat(2, axis=0)
    resp = rng.normal(size=(2, 4))
    pooled_x = x.copy()
    pooled_x[:, a] += pooled_x[:, b]
    pooled_x[:, b] = pooled_x[:, last]
    pooled_x[:, last] = 0.0
    want_resp = resp.copy()
    want_resp[:, a] += want_resp[:, b]
    want_resp[:, b] = want_resp[:, last]
    want_resp[:, last] = 0.0
    merge_columns(gram, [resp], a, b, last)
    assert np.allclose(gram[0], pooled_x.T @ pooled_x)  # as if the data had been pooled
    assert np.allclose(resp, want_resp)
