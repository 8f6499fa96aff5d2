"""The Search page's opening words: what AutoShrink does, the score with its units, what the
knobs mean, and where the recorded runs are for anyone without time to run a search."""

from __future__ import annotations

import streamlit as st

INTRO = (
    "**AutoShrink** (Zhang et al., AAAI 2020) searches for a network *cell*: a small graph of N nodes "
    "whose edges carry feature maps (CNN) or hidden states (RNN). It starts from the densest cell and "
    "removes one edge per step, keeping the removal that scores best."
)

HOW = r"""
- **Start**: the dense cell, every forward edge between its **N** nodes: N(N−1)/2 edges (N=8: 28).
- **Each step** trains **k** candidates, each the current cell minus one edge (edges drawn at random,
  nodes left without a path to the output pruned away), for a few epochs on a small *proxy task*, and
  keeps the candidate with the best score. Step 0 trains the dense cell itself: the baseline.
- **Stop** when round(**keep fraction** × initial edges) edges are left (keep 0 = shrink to the end).
  The answer is the best-scoring snapshot along the way, not necessarily the last one.
- **Score** trades quality for cost:
  - CNN: score = accuracy − 0.1 × (log₁₀ MACs − 6). Accuracy is a fraction (0.9 = 90 %) on the proxy
    validation images; MACs are multiply-accumulates per image. A cell at 1 M MACs pays nothing, and every
    10× more MACs costs 0.1, as much as 10 accuracy points.
  - RNN: score = 0.25 × (200 − perplexity) − (log₁₀ FLOPs − 6). Perplexity is measured on the proxy
    validation text (lower is better); FLOPs are the cell's per token. 10× more FLOPs costs as much as
    4 points of perplexity.
- **Noise**: with noise seeds r > 1, step 0 trains the dense cell r times with different initial weights.
  The spread of those results is how much a figure moves by chance; gaps smaller than it are marked
  *within noise*, and the Explorer says when the cost term, not quality, decided a step.
"""

DEMOS = (
    "**The demos** (offline, about 10 s and 20 s on 2 idle CPU cores): the CNN demo trains on scikit-learn's 8x8 "
    "digits (60 images a class, 2 epochs, accuracy near 90 %). Digits is easy: a 2-edge cell does about as "
    "well as the dense one, so the cost term alone would shrink the cell to 1-2 edges; the CNN demo therefore "
    "stops at half the edges (keep 0.5). The RNN demo trains a 500-word language model on Python's own "
    "documentation: a unigram model scores perplexity ~107, the candidates ~85-100."
)

SAMPLES = (
    "**No time to run a search?** The sidebar's run list includes recorded searches marked "
    "*sample*: a CNN search on the CIFAR-10 proxy and an RNN search on the Penn Treebank proxy, "
    "recorded on a 2-core CPU (their settings, device and wall time are shown with them). Open one "
    "in Explorer, Trade-offs or Compare: nothing is computed."
)


def landing() -> None:
    st.markdown(INTRO)
    with st.expander("How AutoShrink works: N, k, keep fraction, the score", expanded=False):
        st.markdown(HOW)
    st.caption(DEMOS)
    st.caption(SAMPLES)
