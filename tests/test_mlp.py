"""MLP against hand-written numpy/PyTorch forward passes; dropout, batch/layer norm, the lectures' models."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

from jaxopt_lab import losses
from jaxopt_lab.nn import mlp
from jaxopt_lab.nn.init import get_initializer

KEY = jax.random.PRNGKey(0)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 3))
SIZES = [3, 8, 6, 4]


def params64(norm="none", sizes=SIZES, seed=1):
    """Random float64 parameters in the layout of `mlp.init`, built with numpy (no compile)."""
    rng = np.random.default_rng(seed)
    p = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        p[f"dense_{i}"] = {
            "w": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a)),
            "b": jnp.asarray(0.1 * rng.normal(size=b)),
        }
        if norm != "none" and i < len(sizes) - 2:
            p[f"norm_{i}"] = {
                "scale": jnp.asarray(1 + 0.1 * rng.normal(size=b)),
                "bias": jnp.asarray(0.1 * rng.normal(size=b)),
            }
    return p


def numpy_forward(p, x, act, norm="none", stats=None, eps=1e-5):
    """The textbook forward pass, layer by layer."""
    n_dense = len([k for k in p if k.startswith("dense_")])
    h = np.asarray(x)
    for i in range(n_dense):
        w, b = np.asarray(p[f"dense_{i}"]["w"]), np.asarray(p[f"dense_{i}"]["b"])
        z = h @ w + b
        if i == n_dense - 1:
            return z
        if norm == "layer":
            z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + eps)
        elif norm == "batch":
            mean, var = stats[i] if stats is not None else (z.mean(0), z.var(0))
            z = (z - mean) / np.sqrt(var + eps)
        if norm != "none":
            z = z * np.asarray(p[f"norm_{i}"]["scale"]) + np.asarray(p[f"norm_{i}"]["bias"])
        h = act(z)


ACTS = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z}


def test_init_layout_shapes_and_dtype():
    p = mlp.init(KEY, SIZES, norm="layer")
    assert sorted(p) == ["dense_0", "dense_1", "dense_2", "norm_0", "norm_1"]
    chex.assert_shape([p["dense_0"]["w"], p["dense_0"]["b"]], [(3, 8), (8,)])
    chex.assert_shape([p["dense_2"]["w"], p["norm_1"]["scale"], p["norm_1"]["bias"]], [(6, 4), (6,), (6,)])
    chex.assert_trees_all_equal_dtypes(p, jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), p))
    np.testing.assert_array_equal(p["norm_0"]["scale"], np.ones(8))
    np.testing.assert_array_equal(p["dense_1"]["b"], np.zeros(6))
    assert mlp.layer_sizes(p) == SIZES


def test_init_uses_the_named_initializer_per_layer():
    p = mlp.init(KEY, SIZES, init="he_normal")
    keys = jax.random.split(KEY, 3)
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        want = get_initializer("he_normal")(keys[i], (a, b), jnp.float32)
        np.testing.assert_allclose(p[f"dense_{i}"]["w"], want, rtol=1e-6)


@pytest.mark.parametrize(
    "activation, resolved", [("relu", "he_normal"), ("tanh", "glorot_uniform"), ("selu", "lecun_normal")]
)
def test_auto_init_resolves_through_activation(activation, resolved):
    auto = mlp.init(KEY, SIZES, init="auto", activation=activation)
    named = mlp.init(KEY, SIZES, init=resolved, activation=activation)
    chex.assert_trees_all_close(auto, named)


def test_init_scale_multiplies_weights_and_may_be_traced():
    base = mlp.init(KEY, SIZES)
    scales = jnp.asarray([0.0, 0.5, 2.0], jnp.float32)
    batched = jax.vmap(lambda s: mlp.init(KEY, SIZES, init_scale=s))(scales)
    for i, s in enumerate([0.0, 0.5, 2.0]):
        np.testing.assert_allclose(batched["dense_0"]["w"][i], s * base["dense_0"]["w"], rtol=1e-6)
        np.testing.assert_array_equal(batched["dense_1"]["b"][i], base["dense_1"]["b"])


@pytest.mark.parametrize("activation", sorted(ACTS))
@pytest.mark.parametrize("norm", ["none", "layer"])
def test_apply_matches_numpy_forward(activation, norm):
    p = params64(norm)
    out, state = mlp.apply(p, jnp.asarray(X), activation=activation, norm=norm)
    np.testing.assert_allclose(out, numpy_forward(p, X, ACTS[activation], norm), rtol=1e-10, atol=1e-12)
    assert state == {}


def test_layer_norm_matches_torch():
    z = RNG.normal(size=(5, 8))
    p = {"dense_0": {"w": jnp.eye(8), "b": jnp.zeros(8)}, "dense_1": {"w": jnp.eye(8), "b": jnp.zeros(8)}}
    p["norm_0"] = {"scale": jnp.asarray(RNG.normal(size=8)), "bias": jnp.asarray(RNG.normal(size=8))}
    out, _ = mlp.apply(p, jnp.asarray(z), activation="linear", norm="layer")
    want = torch.nn.functional.layer_norm(
        torch.from_numpy(z), (8,), torch.from_numpy(np.asarray(p["norm_0"]["scale"])),
        torch.from_numpy(np.asarray(p["norm_0"]["bias"])), eps=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-10)


def test_batch_norm_training_matches_torch_and_updates_running_averages():
    p = params64("batch", sizes=[3, 8, 2])
    state = mlp.init_state(p, "batch")
    chex.assert_trees_all_equal_shapes(state, {"norm_0": {"mean": jnp.zeros(8), "var": jnp.zeros(8)}})
    out, new_state = mlp.apply(p, jnp.asarray(X), state, activation="linear", norm="batch", train=True)

    bn = torch.nn.BatchNorm1d(8, eps=1e-5, momentum=0.1, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(np.asarray(p["norm_0"]["scale"])))
        bn.bias.copy_(torch.from_numpy(np.asarray(p["norm_0"]["bias"])))
    z = X @ np.asarray(p["dense_0"]["w"]) + np.asarray(p["dense_0"]["b"])
    bn.train()
    h = bn(torch.from_numpy(z)).detach().numpy()
    want = h @ np.asarray(p["dense_1"]["w"]) + np.asarray(p["dense_1"]["b"])
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
    # bn_momentum=0.9 is PyTorch's momentum=0.1 for the mean; the variance is the biased one.
    np.testing.assert_allclose(new_state["norm_0"]["mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(new_state["norm_0"]["var"], 0.9 + 0.1 * z.var(0), rtol=1e-12)


def test_batch_norm_inference_uses_running_averages():
    p = params64("batch")
    stats = {f"norm_{i}": {"mean": jnp.asarray(RNG.normal(size=n)), "var": jnp.asarray(RNG.uniform(0.5, 2, n))}
             for i, n in enumerate(SIZES[1:-1])}  # fmt: skip
    out, state = mlp.apply(p, jnp.asarray(X), stats, norm="batch")
    numpy_stats = [(np.asarray(s["mean"]), np.asarray(s["var"])) for s in stats.values()]
    np.testing.assert_allclose(out, numpy_forward(p, X, ACTS["relu"], "batch", numpy_stats), rtol=1e-10)
    assert state is not stats and jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, state, stats))
    # At inference one example's output does not depend on the rest of the batch; in training it does.
    other = np.concatenate([X[:1], 2 + X[1:]])
    np.testing.assert_allclose(mlp.apply(p, jnp.asarray(other), stats, norm="batch")[0][0], out[0], rtol=1e-12)
    a, _ = mlp.apply(p, jnp.asarray(X), stats, norm="batch", train=True)
    b, _ = mlp.apply(p, jnp.asarray(other), stats, norm="batch", train=True)
    assert not np.allclose(a[0], b[0])


def test_batch_norm_running_averages_converge_to_data_statistics():
    p = params64("batch", sizes=[3, 5, 2])
    state = mlp.init_state(p, "batch")
    step = jax.jit(lambda s: mlp.apply(p, jnp.asarray(X), s, norm="batch", train=True, bn_momentum=0.5)[1])
    for _ in range(60):
        state = step(state)
    z = X @ np.asarray(p["dense_0"]["w"]) + np.asarray(p["dense_0"]["b"])
    np.testing.assert_allclose(state["norm_0"]["mean"], z.mean(0), rtol=1e-9)
    np.testing.assert_allclose(state["norm_0"]["var"], z.var(0), rtol=1e-9)


def test_batch_norm_where_mask_leaves_padding_out():
    p = params64("batch", sizes=[3, 5, 2])
    state = mlp.init_state(p, "batch")
    padded = np.concatenate([X[:10], 100 * np.ones((6, 3))])
    where = jnp.arange(16) < 10
    out_pad, st_pad = mlp.apply(p, jnp.asarray(padded), state, norm="batch", train=True, where=where)
    out, st = mlp.apply(p, jnp.asarray(X[:10]), state, norm="batch", train=True)
    np.testing.assert_allclose(out_pad[:10], out, rtol=1e-10)
    chex.assert_trees_all_close(st_pad, st, rtol=1e-12)


def dropout_net(seed=2):
    """One batch-normed ReLU layer under an identity output layer: the outputs are the dropped activations."""
    p = params64("batch", sizes=[3, 12, 12], seed=seed)
    p["dense_1"] = {"w": jnp.eye(12), "b": jnp.zeros(12)}
    return p


@jax.jit
def train_apply(p, x, state, rate, key):
    """Training-mode apply of `dropout_net`, compiled once and shared by the dropout tests."""
    return mlp.apply(p, x, state, norm="batch", dropout=rate, train=True, key=key)


def test_dropout_masks_rescaling_and_expectation():
    p, x = dropout_net(), jnp.asarray(X)
    state = mlp.init_state(p, "batch")
    keys = jax.random.split(KEY, 2000)
    outs = np.asarray(jax.vmap(lambda k: train_apply(p, x, state, 0.3, k)[0])(keys))
    clean = np.asarray(mlp.apply(p, x, state, norm="batch", train=True)[0])
    active = np.broadcast_to(clean != 0, outs.shape)
    kept = outs != 0
    # Survivors are divided by the keep probability; a fraction 0.3 of the active units is dropped.
    np.testing.assert_allclose(outs[kept], np.broadcast_to(clean / 0.7, outs.shape)[kept], rtol=1e-12)
    assert not np.any(kept & ~active)
    dropped = 1 - kept[active].mean()
    assert abs(dropped - 0.3) < 5 * np.sqrt(0.3 * 0.7 / active.sum())
    # The expectation over masks is the network without dropout (the output is linear in the masks).
    mean, sem = outs.mean(0), outs.std(0) / np.sqrt(len(keys))
    assert np.all(np.abs(mean - clean) <= 5 * sem + 1e-12)


def test_dropout_is_off_at_inference_and_for_a_python_zero():
    p = params64()
    clean, _ = mlp.apply(p, jnp.asarray(X))
    chex.assert_trees_all_close(mlp.apply(p, jnp.asarray(X), dropout=0.5, key=KEY)[0], clean)
    chex.assert_trees_all_close(mlp.apply(p, jnp.asarray(X), dropout=0.0, train=True)[0], clean)


def test_traced_dropout_matches_concrete_rates():
    p, x = dropout_net(), jnp.asarray(X)
    state = mlp.init_state(p, "batch")
    rates = [0.0, 0.25, 0.6]
    batched = jax.vmap(lambda r: train_apply(p, x, state, r, KEY)[0])(jnp.asarray(rates))
    # A Python 0.0 skips dropout structurally; a traced 0.0 keeps every unit.
    want = mlp.apply(p, x, state, norm="batch", dropout=0.0, train=True)[0]
    np.testing.assert_allclose(batched[0], want, rtol=1e-12)
    np.testing.assert_allclose(batched[2], train_apply(p, x, state, 0.6, KEY)[0], rtol=1e-12)
    assert 0 < np.mean(batched[1] == 0) < np.mean(batched[2] == 0)


def test_jit_and_vmap_over_params_states_and_keys():
    runs = [dropout_net(seed=s) for s in range(3)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *runs)
    states = jax.vmap(lambda p: mlp.init_state(p, "batch"))(stacked)
    keys = jax.random.split(KEY, 3)
    x = jnp.asarray(X)
    outs, new_states = jax.vmap(lambda p, s, k: train_apply(p, x, s, 0.2, k))(stacked, states, keys)
    for i in range(3):
        o, s = train_apply(runs[i], x, mlp.init_state(runs[i], "batch"), 0.2, keys[i])
        np.testing.assert_allclose(outs[i], o, rtol=1e-12)
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda a, i=i: a[i], new_states), s, rtol=1e-12)


def test_num_params_equals_torch_count():
    torch_net = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4)
    )
    assert mlp.num_params(params64()) == sum(t.numel() for t in torch_net.parameters())


def test_symmetry_problem_with_constant_init():
    """The initialization lecture: identical initial weights give identical units forever; random ones break the tie."""
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(RNG.integers(0, 4, 16))
    loss = lambda q: losses.softmax_cross_entropy(mlp.apply(q, x, activation="tanh")[0], y)
    step = jax.jit(lambda q: jax.tree_util.tree_map(lambda a, g: a - 0.5 * g, q, jax.grad(loss)(q)))

    def units_after_training(init):
        p = mlp.init(KEY, SIZES, init=init, activation="tanh")
        for _ in range(20):
            p = step(p)
        return np.asarray(p["dense_0"]["w"]), np.asarray(p["dense_1"]["w"])

    for w in units_after_training("constant:0.3"):
        np.testing.assert_allclose(w, np.repeat(w[:, :1], w.shape[1], axis=1), rtol=1e-6)
    for w in units_after_training("he_normal"):
        assert np.min(np.std(w, axis=1)) > 1e-3


def test_linear_regression_zero_gradient_at_sklearn_solution():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]]) + rng.normal(size=(40, 2))
    sk = LinearRegression().fit(x, y)
    model = mlp.linear_regression(3, 2, dtype=jnp.float64)
    shapes = {"dense_0": {"w": np.zeros((3, 2)), "b": np.zeros(2)}}
    chex.assert_trees_all_equal_shapes(jax.eval_shape(model.init, KEY), shapes)
    p = {"dense_0": {"w": jnp.asarray(sk.coef_.T), "b": jnp.asarray(sk.intercept_)}}
    loss = lambda q: losses.mse(model.apply(q, jnp.asarray(x))[0], jnp.asarray(y))
    g = jax.grad(loss)(p)
    assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree_util.tree_leaves(g)) < 1e-10
    np.testing.assert_allclose(model.apply(p, jnp.asarray(x))[0], sk.predict(x), rtol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_regression_zero_gradient_at_sklearn_solution(n_classes):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int) + (n_classes == 3) * (x[:, 1] > 0.5)
    c = 1e3
    sk = LogisticRegression(C=c, tol=1e-12, max_iter=10_000).fit(x, y)
    model = mlp.logistic_regression(2, n_classes, dtype=jnp.float64)
    p0 = jax.eval_shape(model.init, KEY)
    assert p0["dense_0"]["w"].shape == (2, 1 if n_classes == 2 else 3)
    p = {"dense_0": {"w": jnp.asarray(sk.coef_.T), "b": jnp.asarray(sk.intercept_)}}
    loss_fn = losses.binary_cross_entropy if n_classes == 2 else losses.softmax_cross_entropy
    # sklearn minimizes C * sum(loss) + |w|^2 / 2: at its optimum our mean loss has gradient -w / (C n).
    loss = lambda q: loss_fn(model.apply(q, jnp.asarray(x))[0], jnp.asarray(y))
    g = jax.grad(loss)(p)
    np.testing.assert_allclose(g["dense_0"]["w"], -p["dense_0"]["w"] / (c * 60), atol=1e-8)
    np.testing.assert_allclose(g["dense_0"]["b"], np.zeros_like(p["dense_0"]["b"]), atol=1e-8)
    probs = jax.nn.sigmoid(model.apply(p, jnp.asarray(x))[0][:, 0]) if n_classes == 2 else None
    if probs is not None:
        np.testing.assert_allclose(probs, sk.predict_proba(x)[:, 1], rtol=1e-10)


def test_sigmoid_net_matches_lecture_forward_and_backward():
    """The quartic lecture's backward(): dL_dA2 = -Y/A2 + (1-Y)/(1-A2), dL_dZ2 = dL_dA2 A2 (1-A2), ..."""
    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(12, 2))
    outputs = rng.integers(0, 2, (12, 1)).astype(float)
    model = mlp.sigmoid_net(2, 4, 1, dtype=jnp.float64)
    p = params64(sizes=[2, 4, 1], seed=7)
    W1, b1 = np.asarray(p["dense_0"]["w"]), np.asarray(p["dense_0"]["b"])[None]
    W2, b2 = np.asarray(p["dense_1"]["w"]), np.asarray(p["dense_1"]["b"])[None]
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    m = inputs.shape[0]
    A1 = sigmoid(np.matmul(inputs, W1) + b1)
    A2 = sigmoid(np.matmul(A1, W2) + b2)
    dL_dA2 = -outputs / A2 + (1 - outputs) / (1 - A2)
    dL_dZ2 = dL_dA2 * A2 * (1 - A2)
    dL_dA1 = np.dot(dL_dZ2, W2.T)
    dL_dZ1 = dL_dA1 * A1 * (1 - A1)
    lecture = {
        "dense_1": {"w": (1 / m) * np.dot(A1.T, dL_dZ2), "b": (1 / m) * np.sum(dL_dZ2, axis=0)},
        "dense_0": {"w": (1 / m) * np.dot(inputs.T, dL_dZ1), "b": (1 / m) * np.sum(dL_dZ1, axis=0)},
    }
    ce = -np.mean(outputs * np.log(A2) + (1 - outputs) * np.log(1 - A2))

    loss = lambda q: losses.binary_cross_entropy(model.apply(q, jnp.asarray(inputs))[0], jnp.asarray(outputs))
    logits, _ = model.apply(p, jnp.asarray(inputs))
    np.testing.assert_allclose(jax.nn.sigmoid(logits), A2, rtol=1e-12)
    np.testing.assert_allclose(loss(p), ce, rtol=1e-12)
    chex.assert_trees_all_close(jax.grad(loss)(p), lecture, rtol=1e-10, atol=1e-14)
    chex.assert_trees_all_equal_shapes(jax.eval_shape(model.init, KEY), p)


def test_make_mlp_binds_configuration():
    model = mlp.make_mlp(SIZES, activation="tanh", norm="layer", init="lecun_normal")
    p = model.init(KEY)
    chex.assert_trees_all_close(p, mlp.init(KEY, SIZES, activation="tanh", norm="layer", init="lecun_normal"))
    out, _ = model.apply(p, jnp.asarray(X, jnp.float32))
    chex.assert_trees_all_close(out, mlp.apply(p, jnp.asarray(X), activation="tanh", norm="layer")[0])
    assert model.init_state(p) == {}


def test_shape_mismatch_raises_before_tracing():
    p = params64()
    with pytest.raises(ValueError, match=r"x has shape \(16, 5\).*\(3, 8\).*3 features"):
        mlp.apply(p, jnp.ones((16, 5)))
    with pytest.raises(ValueError, match=r"x has shape \(16, 5\)"):
        jax.jit(lambda q, x: mlp.apply(q, x))(p, jnp.ones((16, 5)))
    bad = dict(p, dense_1={"w": jnp.ones((7, 6)), "b": jnp.ones(6)})
    with pytest.raises(ValueError, match=r"dense_1.*expects 7 inputs but dense_0 gives 8"):
        mlp.apply(bad, jnp.ones((2, 3)))


def test_norm_mismatches_raise():
    p = params64()
    with pytest.raises(ValueError, match=r"norm='layer' needs params\['norm_0'\]"):
        mlp.apply(p, jnp.ones((2, 3)), norm="layer")
    with pytest.raises(ValueError, match="norm='none'"):
        mlp.apply(params64("batch"), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"norm='btach'.*did you mean 'batch'"):
        mlp.init(KEY, SIZES, norm="btach")
    pb = params64("batch")
    with pytest.raises(ValueError, match="running statistics"):
        mlp.apply(pb, jnp.ones((2, 3)), norm="batch")
    with pytest.raises(ValueError, match="running statistics"):
        mlp.apply(
            pb, jnp.ones((2, 3)), {"norm_0": {"mean": jnp.zeros(8), "var": jnp.ones(8)}}, norm="batch", train=True
        )
    with pytest.raises(ValueError, match="needs a batch"):
        mlp.apply(pb, jnp.ones(3), norm="batch", train=True)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_out_of_range_raises(rate):
    with pytest.raises(ValueError, match=rf"dropout={rate} is out of range: valid range is \[0.0, 1.0\)"):
        mlp.apply(params64(), jnp.ones((2, 3)), dropout=rate, train=True, key=KEY)


def test_other_bad_input_raises():
    p = params64()
    with pytest.raises(ValueError, match="needs a PRNG key"):
        mlp.apply(p, jnp.ones((2, 3)), dropout=0.5, train=True)
    with pytest.raises(ValueError, match=r"activation='rel'.*did you mean 'relu'"):
        mlp.apply(p, jnp.ones((2, 3)), activation="rel")
    with pytest.raises(ValueError, match="init="):
        mlp.init(KEY, SIZES, init="he")
    with pytest.raises(ValueError, match="sizes="):
        mlp.init(KEY, [3])
    with pytest.raises(ValueError, match="init_scale=-1.0"):
        mlp.init(KEY, SIZES, init_scale=-1.0)
