"""The type stubs (python/nvme/_native.pyi, python/nvme/__init__.pyi) match the built module.

IDEs show the stubs, not the Rust code, so they must not drift from it: every class, function,
method and property of `nvme._native` is declared in the stub and the other way round, method
kinds agree (property or method, settable or read-only), and where PyO3 gives a text signature
(methods and the `#[new]` constructors) the parameter names and defaults are the stub's.
The stubs are read with `ast`, never imported.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import nvme

try:
    import nvme._native as native
except ImportError as exc:  # the native module is not built: nothing to compare with
    native = None
    _import_error: ImportError | None = exc
else:
    _import_error = None

pytestmark = pytest.mark.skipif(
    native is None,
    reason=f"native module nvme._native cannot be imported ({_import_error}); "
    "build it with `make install`",
)

PACKAGE = Path(nvme.__file__).resolve().parent
NATIVE_STUB = PACKAGE / "_native.pyi"
INIT_STUB = PACKAGE / "__init__.pyi"

NO_DEFAULT = object()


# ---- reading a stub ---------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    default: Any  # NO_DEFAULT, or the literal value (Ellipsis for `...`)
    keyword_only: bool = False


@dataclass
class Member:
    """One name of a class body: methods (several for overloads), a property, an attribute."""

    functions: list[ast.FunctionDef] = field(default_factory=list)
    is_property: bool = False
    has_setter: bool = False
    is_attribute: bool = False


@dataclass
class StubClass:
    node: ast.ClassDef
    bases: list[str]
    members: dict[str, Member]


@dataclass
class Stub:
    classes: dict[str, StubClass]
    functions: dict[str, list[ast.FunctionDef]]
    attributes: set[str]
    imported: set[str]
    all: list[str] | None


def _decorator_names(fn: ast.FunctionDef) -> list[str]:
    return [ast.unparse(d) for d in fn.decorator_list]


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return NO_DEFAULT
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)  # not a literal: compared as text, and will differ


def stub_params(fn: ast.FunctionDef) -> list[Param]:
    """Parameters of a stub function in order, `self` included."""
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults: list[Any] = [NO_DEFAULT] * (len(positional) - len(a.defaults))
    defaults += [_literal(d) for d in a.defaults]
    params = [Param(p.arg, d) for p, d in zip(positional, defaults)]
    if a.vararg is not None:
        params.append(Param(a.vararg.arg, NO_DEFAULT))
    params += [
        Param(p.arg, _literal(d), keyword_only=True) for p, d in zip(a.kwonlyargs, a.kw_defaults)
    ]
    return params


def _names(targets: list[ast.expr]) -> list[str]:
    return [t.id for t in targets if isinstance(t, ast.Name)]


def parse_class(node: ast.ClassDef) -> StubClass:
    members: dict[str, Member] = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            m = members.setdefault(item.name, Member())
            decorators = _decorator_names(item)
            if "property" in decorators:
                m.is_property = True
            elif f"{item.name}.setter" in decorators:
                m.has_setter = True
            else:
                m.functions.append(item)
        elif isinstance(item, (ast.AnnAssign, ast.Assign)):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            for name in _names(targets):
                members.setdefault(name, Member()).is_attribute = True
    bases = [b.attr if isinstance(b, ast.Attribute) else ast.unparse(b) for b in node.bases]
    return StubClass(node, bases, members)


def parse_stub(path: Path) -> Stub:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    stub = Stub(classes={}, functions={}, attributes=set(), imported=set(), all=None)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stub.classes[node.name] = parse_class(node)
        elif isinstance(node, ast.FunctionDef):
            stub.functions.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AnnAssign):
            stub.attributes.update(_names([node.target]))
        elif isinstance(node, ast.Assign):
            for name in _names(node.targets):
                if name == "__all__":
                    stub.all = ast.literal_eval(node.value)
                else:
                    stub.attributes.add(name)
        elif isinstance(node, ast.ImportFrom):
            stub.imported.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            stub.imported.update(a.asname or a.name.split(".")[0] for a in node.names)
    return stub


@pytest.fixture(scope="module")
def native_stub() -> Stub:
    return parse_stub(NATIVE_STUB)


@pytest.fixture(scope="module")
def init_stub() -> Stub:
    return parse_stub(INIT_STUB)


# ---- reading the runtime ----------------------------------------------------------------------


def runtime_params(obj: Any) -> list[Param] | None:
    """Parameters from PyO3's `__text_signature__` (None when there is none)."""
    if getattr(obj, "__text_signature__", None) is None:
        return None
    sig = inspect.signature(obj)
    params = []
    for p in sig.parameters.values():
        default = NO_DEFAULT if p.default is inspect.Parameter.empty else p.default
        params.append(Param(p.name, default, p.kind is inspect.Parameter.KEYWORD_ONLY))
    return params


def public_classes() -> dict[str, type]:
    return {
        name: obj
        for name in dir(native)
        if not name.startswith("_") and inspect.isclass(obj := getattr(native, name))
    }


def own_members(cls: type) -> dict[str, Any]:
    """Names the class and its native bases define (builtin bases such as Exception excluded)."""
    out: dict[str, Any] = {}
    for c in reversed(cls.__mro__):
        if c.__module__ in ("builtins",):
            continue
        out.update(vars(c))
    return out


def is_property(value: Any) -> bool:
    return inspect.isgetsetdescriptor(value) or isinstance(value, property)


def mismatch(stub_fn: list[Param], runtime: list[Param]) -> str | None:
    """Why a stub signature differs from a runtime one, or None if it matches."""
    names = [p.name for p in stub_fn]
    want = [p.name for p in runtime]
    if names != want:
        return f"parameters {names} != runtime {want}"
    for s, r in zip(stub_fn, runtime):
        if s.keyword_only != r.keyword_only:
            kind = "keyword-only" if r.keyword_only else "positional or keyword"
            return f"{s.name}: is {kind} at runtime"
        if (s.default is NO_DEFAULT) != (r.default is NO_DEFAULT):
            have = "no default" if s.default is NO_DEFAULT else f"default {s.default!r}"
            wanted = "no default" if r.default is NO_DEFAULT else f"default {r.default!r}"
            return f"{s.name}: stub has {have}, runtime has {wanted}"
        if r.default is Ellipsis or r.default is NO_DEFAULT:
            continue  # PyO3 shows `...` for defaults it cannot print
        if type(s.default) is not type(r.default) or s.default != r.default:
            return f"{s.name}: stub default {s.default!r} != runtime {r.default!r}"
    return None


def check_signature(where: str, overloads: list[ast.FunctionDef], runtime: list[Param]) -> str:
    """'' if one of the stub's overloads has the runtime's parameter names and defaults."""
    reasons = []
    for fn in overloads:
        why = mismatch(stub_params(fn), runtime)
        if why is None:
            return ""
        reasons.append(why)
    return f"{where}: " + "; ".join(reasons)


# ---- the module -------------------------------------------------------------------------------


def test_stub_declares_every_public_name(native_stub):
    runtime = {n for n in dir(native) if not n.startswith("_")} | {"__version__"}
    declared = set(native_stub.classes) | set(native_stub.functions) | native_stub.attributes
    missing = sorted(runtime - declared)
    assert not missing, f"{NATIVE_STUB.name} does not declare {missing}"


def test_stub_declares_nothing_the_module_lacks(native_stub):
    declared = set(native_stub.classes) | set(native_stub.functions) | native_stub.attributes
    # Private names of the stub (`_Callback` ...) are type aliases that exist only for checkers.
    declared = {n for n in declared if not n.startswith("_") or n.startswith("__")}
    extra = sorted(n for n in declared if n != "__all__" and not hasattr(native, n))
    assert not extra, f"{NATIVE_STUB.name} declares {extra}, which nvme._native does not have"


def test_stub_all_is_the_module_all(native_stub):
    assert native_stub.all is not None, f"{NATIVE_STUB.name} has no __all__"
    assert sorted(native_stub.all) == sorted(native.__all__)


def test_module_functions_match(native_stub):
    problems = []
    for name in dir(native):
        obj = getattr(native, name)
        if name.startswith("_") or inspect.isclass(obj) or not callable(obj):
            continue
        params = runtime_params(obj)
        if params is not None and name in native_stub.functions:
            problems.append(check_signature(name, native_stub.functions[name], params))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


# ---- classes ----------------------------------------------------------------------------------


def test_classes_have_the_runtime_bases(native_stub):
    problems = []
    for name, cls in public_classes().items():
        stub_cls = native_stub.classes.get(name)
        if stub_cls is None:
            continue  # reported by test_stub_declares_every_public_name
        runtime = [b.__name__ for b in cls.__bases__ if b is not object]
        if stub_cls.bases != runtime:
            problems.append(f"{name}: stub bases {stub_cls.bases} != runtime {runtime}")
    assert not problems, "\n".join(problems)


def test_final_classes_are_the_runtime_ones(native_stub):
    """A class PyO3 makes without `subclass` cannot be subclassed: the stub marks it @final."""
    base_type_flag = 1 << 10  # Py_TPFLAGS_BASETYPE
    problems = []
    for name, cls in public_classes().items():
        stub_cls = native_stub.classes.get(name)
        if stub_cls is None:
            continue
        final = any(
            ast.unparse(d) in ("final", "typing.final") for d in stub_cls.node.decorator_list
        )
        subclassable = bool(cls.__flags__ & base_type_flag)
        if final == subclassable:
            problems.append(
                f"{name}: subclassable at runtime is {subclassable}, @final in stub is {final}"
            )
    assert not problems, "\n".join(problems)


def stub_member(stub: Stub, name: str, attr: str) -> Member | None:
    """`attr` of stub class `name` or, as at runtime, of its bases declared in the same stub."""
    stub_cls = stub.classes.get(name)
    if stub_cls is None:
        return None
    if attr in stub_cls.members:
        return stub_cls.members[attr]
    for base in stub_cls.bases:
        if base != name and (m := stub_member(stub, base, attr)) is not None:
            return m
    return None


def test_every_runtime_member_is_declared(native_stub):
    problems = []
    for name, cls in public_classes().items():
        stub_cls = native_stub.classes.get(name)
        if stub_cls is None:
            continue
        for attr, value in own_members(cls).items():
            if attr.startswith("_"):
                continue
            member = stub_member(native_stub, name, attr)
            if member is None:
                problems.append(f"{name}.{attr} is not declared")
            elif is_property(value) and not (member.is_property or member.is_attribute):
                problems.append(f"{name}.{attr} is a property at runtime, not in the stub")
            elif not is_property(value) and (member.is_property or not member.functions):
                problems.append(f"{name}.{attr} is a method at runtime, not in the stub")
        if getattr(cls, "__text_signature__", None) is not None and "__init__" not in (
            stub_cls.members
        ):
            problems.append(f"{name}.__init__ {cls.__text_signature__} is not declared")
    assert not problems, "\n".join(problems)


def test_stub_members_exist_at_runtime(native_stub):
    problems = []
    for name, stub_cls in native_stub.classes.items():
        cls = getattr(native, name, None)
        if cls is None:
            continue  # reported by test_stub_declares_nothing_the_module_lacks
        members = own_members(cls)
        for attr in stub_cls.members:
            if attr == "__init__":
                if getattr(cls, "__text_signature__", None) is None:
                    problems.append(f"{name}.__init__: the runtime class has no constructor")
            elif attr == "__getattr__":
                # PyO3 implements `__getattr__` in the type's attribute lookup slot.
                if "__getattribute__" not in members and "__getattr__" not in members:
                    problems.append(f"{name}.__getattr__ does not exist at runtime")
            elif attr == "__hash__":
                if cls.__hash__ is not None:
                    problems.append(f"{name}.__hash__: the stub says unhashable, it is hashable")
            elif attr not in members:
                problems.append(f"{name}.{attr} does not exist at runtime")
    assert not problems, "\n".join(problems)


def test_unhashable_classes_are_declared_so(native_stub):
    problems = []
    for name, cls in public_classes().items():
        stub_cls = native_stub.classes.get(name)
        if stub_cls is None or issubclass(cls, BaseException):
            continue
        if cls.__hash__ is None and stub_member(native_stub, name, "__hash__") is None:
            problems.append(f"{name} is unhashable: declare `__hash__: ClassVar[None]`")
    assert not problems, "\n".join(problems)


def test_signatures_match(native_stub):
    problems = []
    checked = 0
    for name, cls in public_classes().items():
        stub_cls = native_stub.classes.get(name)
        if stub_cls is None:
            continue
        ctor = runtime_params(cls)
        init = stub_cls.members.get("__init__")
        if ctor is not None and init is not None:
            ctor = [Param("self", NO_DEFAULT), *ctor]
            problems.append(check_signature(f"{name}.__init__", init.functions, ctor))
            checked += 1
        for attr, value in own_members(cls).items():
            params = runtime_params(value) if callable(value) else None
            member = stub_member(native_stub, name, attr)
            if params is None or member is None or not member.functions:
                continue
            if attr.startswith("__"):
                continue  # slots (`__getitem__` ...): positional-only, names do not matter
            # PyO3's method signatures start with `$self`, shown by inspect as `self`.
            problems.append(check_signature(f"{name}.{attr}", member.functions, params))
            checked += 1
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    assert checked > 50, f"only {checked} signatures compared: PyO3 text signatures missing?"


def test_stub_declarations_have_docstrings(native_stub, init_stub):
    """IDEs show these docstrings: every class, function, method and property has one."""
    problems = []

    def has_doc(fn: ast.FunctionDef | ast.ClassDef) -> bool:
        return ast.get_docstring(fn) is not None

    for stub, path in ((native_stub, NATIVE_STUB), (init_stub, INIT_STUB)):
        for name, overloads in stub.functions.items():
            if not any(has_doc(f) for f in overloads):
                problems.append(f"{path.name}: {name}()")
        for cname, stub_cls in stub.classes.items():
            if not has_doc(stub_cls.node):
                problems.append(f"{path.name}: class {cname}")
            for item in stub_cls.node.body:
                if not isinstance(item, ast.FunctionDef):
                    continue
                if f"{item.name}.setter" in _decorator_names(item):
                    continue  # the getter's docstring is the property's
                if not has_doc(item):
                    problems.append(f"{path.name}: {cname}.{item.name} (line {item.lineno})")
    assert not problems, "no docstring:\n" + "\n".join(problems)


# ---- settable properties, on the simulated SSD ------------------------------------------------


@pytest.fixture(scope="module")
def instances():
    """One object of each class, on a simulated SSD."""
    pcie = native.Pcie("sim://")
    nvme0 = nvme.Controller(pcie)
    ns = native.Namespace(nvme0, 1)
    qpair = native.Qpair(nvme0, 8)
    objects = {
        "Buffer": native.Buffer(512),
        "Pcie": pcie,
        "Controller": nvme0,
        "Namespace": ns,
        "Qpair": qpair,
        "Subsystem": native.Subsystem(nvme0),
        "CQE": native.CQE(),
        "Simulator": pcie.sim,
        "IdentifyData": nvme0.id_ctrl(),
        "PRP": native.PRP(),
        "PRPList": native.PRPList(),
        "SGL": native.SGL(512),
        "DataBlockSGL": native.DataBlockSGL(512),
        "BitBucketSGL": native.BitBucketSGL(512),
        "SegmentSGL": native.SegmentSGL(32),
        "LastSegmentSGL": native.LastSegmentSGL(16),
    }
    sqe = native.SQE(2, 1)
    sqe.sgl = objects["DataBlockSGL"]
    cq = native.IOCQ(nvme0, 2, 4, native.PRP())
    objects |= {"SQE": sqe, "IOCQ": cq, "IOSQ": native.IOSQ(nvme0, 2, 4, native.PRP(), cq=cq)}
    yield objects
    objects["IOSQ"].delete()
    cq.delete()
    ns.close()
    qpair.delete()
    pcie.close()


def test_settable_properties_match(native_stub, instances):
    """A property with a setter in the stub can be assigned at runtime, and only those."""
    problems = []
    for name, cls in public_classes().items():
        stub_cls = native_stub.classes.get(name)
        if stub_cls is None or issubclass(cls, BaseException):
            continue
        properties = {
            attr: member
            for attr, value in own_members(cls).items()
            if not attr.startswith("_")
            and is_property(value)
            and (member := stub_member(native_stub, name, attr)) is not None
        }
        if not properties:
            continue
        assert name in instances, f"no instance of {name} to check its properties: add one"
        obj = instances[name]
        for attr, member in properties.items():
            try:
                setattr(obj, attr, getattr(obj, attr))  # writes the value it has back
                settable = True
            except AttributeError:
                settable = False
            if settable and not member.has_setter:
                problems.append(f"{name}.{attr} is settable at runtime: add a setter")
            if not settable and member.has_setter:
                problems.append(f"{name}.{attr} is read-only at runtime: remove the setter")
    assert not problems, "\n".join(problems)


# ---- the package: nvme/__init__.pyi -----------------------------------------------------------


def test_package_stub_all_is_the_package_all(init_stub):
    assert init_stub.all is not None, f"{INIT_STUB.name} has no __all__"
    assert sorted(init_stub.all) == sorted(nvme.__all__)


def test_package_stub_declares_every_exported_name(init_stub):
    declared = (
        set(init_stub.classes)
        | set(init_stub.functions)
        | init_stub.attributes
        | init_stub.imported
    )
    missing = sorted(set(nvme.__all__) - declared)
    assert not missing, f"{INIT_STUB.name} does not declare {missing}"


def test_package_stub_declares_the_public_functions(init_stub):
    runtime = {
        name
        for name, obj in vars(nvme).items()
        if inspect.isfunction(obj) and obj.__module__ == "nvme" and not name.startswith("_")
    }
    declared = set(init_stub.functions)
    assert sorted(runtime - declared) == [], f"{INIT_STUB.name} lacks them"
    assert sorted(declared - runtime) == [], "declared in the stub, missing in nvme"


def test_package_controller_matches(init_stub):
    stub_cls = init_stub.classes.get("Controller")
    assert stub_cls is not None, f"{INIT_STUB.name} does not declare Controller"
    assert stub_cls.bases == ["Controller"] and nvme.Controller.__bases__ == (native.Controller,)
    own = {n for n in vars(nvme.Controller) if not n.startswith("__")}
    declared = set(stub_cls.members) - {"__init__"}
    assert sorted(own - declared) == [], "nvme.Controller members missing in the stub"
    sig = inspect.signature(nvme.Controller.__init__)
    runtime = [
        Param(p.name, NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
    ]
    assert (
        check_signature("Controller.__init__", stub_cls.members["__init__"].functions, runtime)
        == ""
    )
