"""The one Jinja2 environment every generated file is rendered with.

Strict: a missing variable is an error, not an empty string.  Filters quote what reaches
C++ and Tcl.  Template errors are re-raised naming the template file and line.
"""

from __future__ import annotations

import functools
import re

import jinja2

from .data_paths import templates_dir

__all__ = ["render", "TemplateError", "cpp_ident", "tcl_quote", "cpp_string"]

_CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch template
this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t
while xor xor_eq main
""".split())


class TemplateError(RuntimeError):
    pass


def cpp_ident(name: str) -> str:
    """A valid, non-reserved C++ identifier derived from ``name`` (deterministic)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    s = re.sub(r"_+", "_", s).strip("_") or "layer"
    if s[0].isdigit():
        s = "l_" + s
    if s in _CPP_KEYWORDS or s.startswith("__") or re.match(r"_[A-Z]", s) or s.startswith(("ap_", "nnet", "hls")):
        s = "l_" + s
    return s


def tcl_quote(value) -> str:
    """A Tcl word that means exactly ``value`` (brace-quoted where possible)."""
    s = str(value)
    if s and re.fullmatch(r"[A-Za-z0-9_./:+-]+", s):
        return s
    if "\\" not in s and _balanced_braces(s) and not s.endswith("\\"):
        return "{" + s + "}"
    return '"' + re.sub(r'([\\$\[\]"{}])', r"\\\1", s).replace("\n", "\\n") + '"'


def _balanced_braces(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def cpp_string(value) -> str:
    """A C++ string literal meaning exactly ``value``."""
    s = str(value).encode("utf-8")
    out = []
    for b in s:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127 and c != "?":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["cpp_ident"] = cpp_ident
    env.filters["tcl"] = tcl_quote
    env.filters["cpp_string"] = cpp_string
    return env


def render(template: str, **context) -> str:
    """Render ``templates/<template>`` with ``context``."""
    try:
        return _env().get_template(template).render(**context)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"{e.filename or template}:{e.lineno}: {e.message}") from None
    except jinja2.UndefinedError as e:
        raise TemplateError(f"{template}:{_template_line(e, template)}: {e.message}") from None
    except jinja2.TemplateNotFound as e:
        raise TemplateError(f"template {e.name!r} not found under {templates_dir()}") from None


def _template_line(exc: BaseException, template: str) -> str:
    tb = exc.__traceback__
    line = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(template):
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line
