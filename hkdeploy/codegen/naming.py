"""C naming rules for generated code: identifiers users choose (``tflm_var_name``) and include guards.

Pure Python with no imports beyond ``re``: the config validator (hkdeploy/config/params.py) calls
``c_identifier_problem`` so a bad name is a config error before any work starts.
"""

from __future__ import annotations

import re

# C11 and C++17 keywords, C++ alternative tokens (``and``, ``not``, ... are operators in C++), and
# C++20 keywords a firmware tree may already compile with.
C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if inline
    int long register restrict return short signed sizeof static struct switch typedef union unsigned void
    volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
    _Thread_local alignas alignof and and_eq asm bitand bitor bool catch char16_t char32_t char8_t class
    compl concept consteval constexpr constinit const_cast co_await co_return co_yield decltype delete
    dynamic_cast explicit export false friend mutable namespace new noexcept not not_eq nullptr operator
    or or_eq private protected public reinterpret_cast requires static_assert static_cast template this
    thread_local throw true try typeid typename using virtual wchar_t xor xor_eq""".split()
)
_C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The generated headers define macros named HK_MODEL_*: a variable of that name would be rewritten.
_RESERVED_PREFIX = "HK_MODEL_"
# C11 5.2.4.1: 63 significant initial characters in an internal identifier; <name>_len must fit too.
MAX_IDENTIFIER = 59


def c_identifier_problem(name: str) -> str | None:
    """Why ``name`` is not a safe C/C++ identifier for a generated global, or None if it is fine."""
    if not _C_IDENT.match(name):
        return "it must start with a letter and contain only letters, digits and '_'"
    if name in C_KEYWORDS:
        return "it is a C/C++ keyword"
    if name.startswith("__") or (name.startswith("_") and len(name) > 1 and name[1].isupper()):
        return "names starting with '__' or '_' + capital letter are reserved by the C standard"
    if name.startswith(_RESERVED_PREFIX):
        return f"names starting with {_RESERVED_PREFIX} clash with the macros of the generated headers"
    if len(name) > MAX_IDENTIFIER:
        return f"it is longer than {MAX_IDENTIFIER} characters (C guarantees 63, and '<name>_len' is derived)"
    return None


def include_guard(*parts: str) -> str:
    """An include guard from name parts: upper case, no leading underscore (reserved in C).

    >>> include_guard("g_model", "buffer_h")
    'G_MODEL_BUFFER_H'
    """
    raw = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9]+", "_", raw).upper().lstrip("_")
