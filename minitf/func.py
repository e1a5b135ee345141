"""Function transforms on the autograd engine, with torch.func's signatures (grad, grad_and_value,
vjp, jvp, jacrev, jacfwd, hessian) and torch.autograd.functional's (jacobian, hvp, vhp).

    from minitf import func
    f = lambda x: (x ** 3).sum()
    func.grad(f)(x)                  # 3 x^2
    func.grad(func.grad(f))          # composes: any order
    func.hessian(f)(x)               # diag(6 x), shape x.shape + x.shape
    func.hvp(f, x, v)                # (f(x), H v) without forming H

A transform differentiates with respect to fresh copies of its arguments; when an argument
already requires grad (an enclosing transform, or your own graph), the result keeps a graph back
to it (create_graph), so transforms nest and their results can be differentiated again. Forward
mode (jvp, jacfwd) is the double-vjp trick: it needs the ops' differentiable rules.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from . import backend
from .autograd import Tensor, enable_grad, grad as autograd_grad
from .autograd.ops_shape import stack

Argnums = int | tuple[int, ...]


def _alias(x: Tensor) -> Tensor:
    """x itself to the values, a new node to the graph: what a transform differentiates with
    respect to. Tracked (requires grad) always; linked back to x when x requires grad."""
    if not isinstance(x, Tensor):
        raise TypeError(f"func: differentiable arguments must be minitf Tensors, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"func: cannot differentiate with respect to a {x.dtype} tensor (floating point only)")
    if not x.requires_grad:
        return Tensor(x.data, requires_grad=True)
    return Tensor.from_op(x.data, (x,), lambda g: (g,), lambda g, out: (g,))


def _needs_graph(outputs: Sequence[Any], tracked: list[Tensor]) -> bool:
    """Whether the outputs depend on a tensor that requires grad besides the fresh aliases: an argument
    that requires grad (its alias has it as parent), a tensor the function closes over, an argument
    not among argnums. Then the gradients must keep a graph back to it (create_graph), as torch.func."""
    own = {id(t) for t in tracked}
    stack = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if id(node) in own:
            if node._parents:
                return True
            continue
        if not node._parents:  # a leaf that requires grad (or a node whose graph was released)
            return True
        stack.extend(p for p in node._parents if p.requires_grad)
    return False


def _any_requires_grad(values: Sequence[Any]) -> bool:
    return any(isinstance(v, Tensor) and v.requires_grad for v in values)


def _argnums(argnums: Argnums, count: int) -> tuple[int, ...]:
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not numbers or any(not -count <= i < count for i in numbers):
        raise ValueError(f"func: argnums {argnums} out of range for {count} positional arguments")
    return tuple(i % count for i in numbers)


def _differentiate(args: tuple, argnums: Argnums) -> tuple[tuple, list[Tensor], bool]:
    """(args with the chosen ones replaced by tracked aliases, those aliases, create_graph)."""
    positions = _argnums(argnums, len(args))
    create = any(isinstance(args[i], Tensor) and args[i].requires_grad for i in positions)
    tracked = [_alias(args[i]) for i in positions]
    new_args = list(args)
    for i, t in zip(positions, tracked):
        new_args[i] = t
    return tuple(new_args), tracked, create


def _gradients(outputs: Sequence[Tensor], inputs: list[Tensor], cotangents: Sequence[Any] | None,
               create: bool, retain: bool = False) -> tuple[Tensor, ...]:
    """d outputs / d inputs; zeros for an input the outputs do not use (as torch.func)."""
    live = [i for i, o in enumerate(outputs) if o.requires_grad]
    if not live:
        return tuple(_zeros(x) for x in inputs)
    grads = autograd_grad([outputs[i] for i in live], inputs,
                          None if cotangents is None else [cotangents[i] for i in live],
                          retain_graph=retain or create, create_graph=create, allow_unused=True)
    return tuple(_zeros(x) if g is None else g for g, x in zip(grads, inputs))


def _zeros(x: Tensor) -> Tensor:
    return Tensor(backend.get_array_module(x.data).zeros_like(x.data))


def _pick(values: tuple, argnums: Argnums) -> Any:
    return values[0] if isinstance(argnums, int) else values


def grad_and_value(func: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable:
    """A function returning (gradient of func's one-element output with respect to args[argnums],
    the output); with has_aux, func returns (output, aux) and the value is (output, aux)."""
    def wrapper(*args: Any) -> tuple[Any, Any]:
        with enable_grad():
            new_args, tracked, create = _differentiate(args, argnums)
            result = func(*new_args)
            out, aux = result if has_aux else (result, None)
            if not isinstance(out, Tensor) or out.size != 1:
                shape = getattr(out, "shape", type(out).__name__)
                raise ValueError(f"func.grad: the function must return a one-element Tensor, got {shape}")
            create = create or _needs_graph([out], tracked)
            grads = _gradients([out], tracked, None, create)
        value = out if create else out.detach()
        return _pick(grads, argnums), ((value, _plain(aux, create)) if has_aux else value)
    return wrapper


def grad(func: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of func (one-element output) with respect to args[argnums]
    (a tuple of gradients for a tuple of argnums; with has_aux, (gradient, aux))."""
    both = grad_and_value(func, argnums, has_aux)

    def wrapper(*args: Any) -> Any:
        grads, value = both(*args)
        return (grads, value[1]) if has_aux else grads
    return wrapper


def vjp(func: Callable[..., Any], *primals: Tensor, has_aux: bool = False) -> tuple:
    """(func(*primals), vjp_fn[, aux]): vjp_fn(cotangent) is the tuple of cotangent^T d func/d primal,
    one per primal; it may be called many times. func returns one Tensor (or a tuple of Tensors,
    and then vjp_fn takes one cotangent per output)."""
    with enable_grad():
        new_args, tracked, create = _differentiate(primals, tuple(range(len(primals))))
        result = func(*new_args)
    out, aux = result if has_aux else (result, None)
    outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    create = create or _needs_graph(outputs, tracked)

    def vjp_fn(*cotangents: Any) -> tuple[Tensor, ...]:
        if len(cotangents) == 1 and isinstance(cotangents[0], (tuple, list)) and len(outputs) > 1:
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(outputs):
            raise ValueError(f"func.vjp: {len(cotangents)} cotangents for {len(outputs)} outputs")
        with enable_grad():  # a cotangent that requires grad is differentiated through too
            return _gradients(outputs, tracked, list(cotangents), create or _any_requires_grad(cotangents), retain=True)

    return (out, vjp_fn, _plain(aux, create)) if has_aux else (out, vjp_fn)


def jvp(func: Callable[..., Any], primals: Sequence[Tensor], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple:
    """(func(*primals), J tangents) for a Tensor-valued func: forward mode by the double-vjp trick
    (the vjp u -> J^T u is linear in u; its own vjp with cotangent `tangents` is J tangents)."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"func.jvp: {len(tangents)} tangents for {len(primals)} primals")
    for p, t in zip(primals, tangents):
        if tuple(getattr(t, "shape", ())) != p.shape:
            raise ValueError(f"func.jvp: a tangent of shape {getattr(t, 'shape', ())} for a primal of shape {p.shape}")
    with enable_grad():
        new_args, tracked, create = _differentiate(primals, tuple(range(len(primals))))
        result = func(*new_args)
        out, aux = result if has_aux else (result, None)
        if not isinstance(out, Tensor):
            raise TypeError("func.jvp: the function must return one Tensor")
        if not out.requires_grad:
            return (out, _zeros(out), aux) if has_aux else (out, _zeros(out))
        create = create or _needs_graph([out], tracked) or _any_requires_grad(tangents)
        u = Tensor(backend.get_array_module(out.data).zeros_like(out.data), requires_grad=True)
        vjps = autograd_grad([out], tracked, [u], create_graph=True, allow_unused=True)
        pairs = [(g, t) for g, t in zip(vjps, tangents) if g is not None and g.requires_grad]
        if not pairs:
            tangent_out = _zeros(out)
        else:
            tangent_out, = autograd_grad([g for g, _ in pairs], [u], [t for _, t in pairs], create_graph=create,
                                         allow_unused=True)
            tangent_out = _zeros(out) if tangent_out is None else tangent_out
    value = out if create else out.detach()
    return (value, tangent_out, _plain(aux, create)) if has_aux else (value, tangent_out)


def jacrev(func: Callable[..., Any], argnums: Argnums = 0) -> Callable:
    """A function returning the Jacobian of func's Tensor output with respect to args[argnums]:
    shape output.shape + arg.shape, one reverse pass per output element."""
    def wrapper(*args: Any) -> Any:
        with enable_grad():
            new_args, tracked, create = _differentiate(args, argnums)
            out = func(*new_args)
            if not isinstance(out, Tensor):
                raise TypeError("func.jacrev: the function must return one Tensor")
            create = create or _needs_graph([out], tracked)
            xp = backend.get_array_module(out.data)
            rows = []
            for k in range(out.size):
                basis = xp.zeros(out.size, dtype=out.dtype)
                basis[k] = 1
                rows.append(_gradients([out], tracked, [basis.reshape(out.shape)], create, retain=True))
            jacobians = tuple(_stack_rows([row[j] for row in rows], out.shape, x)
                              for j, x in enumerate(tracked))
        return _pick(jacobians, argnums)
    return wrapper


def jacfwd(func: Callable[..., Any], argnums: Argnums = 0) -> Callable:
    """The Jacobian as jacrev's, by one forward-mode product (jvp) per input element."""
    def wrapper(*args: Any) -> Any:
        positions = _argnums(argnums, len(args))
        chosen = [args[i] for i in positions]

        def of_chosen(*values: Tensor) -> Tensor:
            full = list(args)
            for i, value in zip(positions, values):
                full[i] = value
            return func(*full)

        jacobians = []
        for j, x in enumerate(chosen):
            xp = backend.get_array_module(x.data)
            columns, out = [], None
            for k in range(x.size):
                tangents = [xp.zeros_like(c.data) for c in chosen]
                tangents[j][xp.unravel_index(k, x.shape)] = 1  # reshape(-1) of a non-C-contiguous array is a copy
                out, column = jvp(of_chosen, chosen, tangents)
                columns.append(column)
            if out is None:  # an empty input: nothing to push forward
                out = of_chosen(*chosen)
                jacobians.append(Tensor(xp.zeros(out.shape + x.shape, dtype=out.dtype)))
                continue
            jacobians.append(stack(columns, axis=-1).reshape(out.shape + x.shape))
        return _pick(tuple(jacobians), argnums)
    return wrapper


def hessian(func: Callable[..., Any], argnums: Argnums = 0) -> Callable:
    """A function returning the Hessian of func's one-element output: shape arg.shape + arg.shape
    (jacrev of grad)."""
    if not isinstance(argnums, int):
        raise ValueError("func.hessian: one argnum (an int); for several, nest jacrev(jacrev(f, argnums), argnums)")

    def wrapper(*args: Any) -> Tensor:
        return jacrev(grad(func, argnums), argnums)(*args)
    return wrapper


def jacobian(func: Callable[..., Any], inputs: Tensor | Sequence[Tensor], create_graph: bool = False) -> Any:
    """torch.autograd.functional.jacobian: the Jacobian of func(*inputs) (one Tensor output) with respect
    to each input (a tuple for a tuple of inputs). Without create_graph the result is plain values (no
    graph, even to inputs that require grad); with it, differentiable with respect to the inputs."""
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    if create_graph:
        inputs = tuple(x if x.requires_grad else Tensor(x.data, requires_grad=True) for x in inputs)
    else:
        inputs = tuple(_checked(x, "jacobian").detach() for x in inputs)
    result = jacrev(func, 0 if single else tuple(range(len(inputs))))(*inputs)
    return result if create_graph else _detached(result)


def hvp(func: Callable[..., Any], inputs: Tensor | Sequence[Tensor], v: Any,
        create_graph: bool = False) -> tuple[Tensor, Any]:
    """torch.autograd.functional.hvp: (func(inputs), H v) for a one-element func, H its Hessian with
    respect to the inputs, without forming H (reverse over reverse: the gradient of grad . v).
    Without create_graph both are plain values; with it, differentiable with respect to inputs and v."""
    single = isinstance(inputs, Tensor)
    inputs, vs = ((inputs,), (v,)) if single else (tuple(inputs), tuple(v))
    if len(vs) != len(inputs):
        raise ValueError(f"func.hvp: {len(vs)} vectors v for {len(inputs)} inputs")
    if not create_graph:
        inputs = tuple(_checked(x, "hvp").detach() for x in inputs)
        vs = tuple(w.detach() if isinstance(w, Tensor) else w for w in vs)
        value, products = hvp(func, inputs[0] if single else inputs, vs[0] if single else vs, create_graph=True)
        return value.detach(), _detached(products)
    with enable_grad():
        new_args, tracked, create = _differentiate(inputs, tuple(range(len(inputs))))
        out = func(*new_args)
        create = create or _needs_graph([out], tracked) or _any_requires_grad(vs)
        grads = autograd_grad([out], tracked, create_graph=True, allow_unused=True)
        pairs = [(g, w) for g, w in zip(grads, vs) if g is not None and g.requires_grad]
        products = _gradients([g for g, _ in pairs], tracked, [w for _, w in pairs], create) if pairs \
            else tuple(_zeros(x) for x in tracked)
    value = out if create else out.detach()
    return value, (products[0] if single else products)


def vhp(func: Callable[..., Any], inputs: Tensor | Sequence[Tensor], v: Any,
        create_graph: bool = False) -> tuple[Tensor, Any]:
    """torch.autograd.functional.vhp: (func(inputs), v^T H), equal to hvp's for a symmetric Hessian."""
    return hvp(func, inputs, v, create_graph)


def _checked(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"func.{name}: inputs must be minitf Tensors, got {type(x).__name__}")
    return x


def _plain(aux: Any, create: bool) -> Any:
    """The auxiliary output, its Tensors (in tuples, lists, dicts) cut from this transform's aliases unless
    an enclosing graph must be kept (create): as torch.func, aux is not differentiated here."""
    if create:
        return aux
    if isinstance(aux, Tensor):
        return aux.detach()
    if isinstance(aux, (tuple, list)):
        return type(aux)(_plain(a, create) for a in aux)
    if isinstance(aux, dict):
        return {k: _plain(a, create) for k, a in aux.items()}
    return aux


def _detached(result: Tensor | tuple) -> Any:
    return result.detach() if isinstance(result, Tensor) else tuple(_detached(r) for r in result)


def _stack_rows(rows: list[Tensor], out_shape: tuple[int, ...], x: Tensor) -> Tensor:
    if not rows:  # an empty output
        return Tensor(backend.get_array_module(x.data).zeros(out_shape + x.shape, dtype=x.dtype))
    return stack(rows, axis=0).reshape(out_shape + x.shape)


__all__ = ["grad", "grad_and_value", "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jvp", "vhp", "vjp"]
