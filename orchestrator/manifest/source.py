"""Manifest text to plain data, keeping the YAML nodes to find the line of any value.

PyYAML (libyaml when installed) parses and composes the document; the walk here builds the
data from the nodes. On the way, ``${VAR}`` references are filled in from the environment,
duplicate keys (which YAML silently collapses to the last) are reported, and aliases may
expand only so far. Text that is not YAML at all raises :class:`ManifestError` at once;
smaller problems are collected for the caller to report together with its own.
"""

from __future__ import annotations

import bisect
import gc
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import ManifestError, ManifestProblem

DataPath = tuple[str | int, ...]
"""Where a value sits in the data: mapping keys and list indexes from the top."""

MAX_DEPTH = 32
"""How deeply lists and mappings may nest; a manifest needs five levels."""

SAFE_NESTING = 1_000
"""Text that cannot nest deeper than this is composed at once; other text is first checked
event by event, which costs a second pass."""

MAX_ALIAS_EXPANSION = 100_000
"""How many nodes aliases may repeat in all, so that a "billion laughs" document stops early."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_BRACKETS = re.compile(r"[\[\]{}]")

_REFERENCE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^{}]*))?\})?")
"""``$${`` (an escaped ``${``), ``${NAME}``, ``${NAME:-default}``, or a bare ``${`` that
starts no valid reference."""


class _Mark(Protocol):
    """Where a YAML node or error is: PyYAML's and libyaml's marks both have it."""

    @property
    def index(self) -> int: ...


class Lines:
    """Line numbers as editors show them: counted by "\\n" only. YAML also breaks lines at
    U+0085, U+2028 and U+2029, so its own line numbers can point past the end of a file an
    editor shows as one line."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts: list[int] | None = None

    def of(self, mark: _Mark | None) -> int | None:
        if mark is None:
            return None
        if self._starts is None:
            self._starts = [i for i, c in enumerate(self._text) if c == "\n"]
        return bisect.bisect_left(self._starts, mark.index) + 1


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """The data of a manifest, the YAML it came from, and the problems found so far."""

    source: str
    data: object
    root: Node | None
    lines: Lines
    problems: tuple[ManifestProblem, ...]
    reported: frozenset[DataPath]
    """Paths whose problems are already among ``problems``; later checks stay quiet there."""
    unset: tuple[UnsetReference, ...] = ()
    """References to unset variables where that only means "not set here"."""

    def line_of(self, path: DataPath) -> int | None:
        """The line of ``path`` (of its key, or its list item), or of the closest enclosing
        value that was written. Lines are looked up only for errors, so loading stays lean."""
        node = self.root
        if node is None:
            return None
        line = self.lines.of(node.start_mark)
        for part in path:
            if isinstance(node, MappingNode):
                # The last of duplicate keys is the one YAML keeps.
                pair = next((p for p in reversed(node.value) if p[0].value == part), None)
                if pair is None:
                    break
                line, node = self.lines.of(pair[0].start_mark), pair[1]
            elif isinstance(node, SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = self.lines.of(node.start_mark)
            else:
                break
        return line

    def text_of(self, path: DataPath) -> str | None:
        """The text a scalar at ``path`` was written as (``012``, where YAML read 10)."""
        node = self.root
        for part in path:
            if isinstance(node, MappingNode):
                pair = next((p for p in reversed(node.value) if p[0].value == part), None)
                node = pair[1] if pair is not None else None
            elif isinstance(node, SequenceNode) and isinstance(part, int):
                node = node.value[part] if 0 <= part < len(node.value) else None
            else:
                return None
            if node is None:
                return None
        return node.value if isinstance(node, ScalarNode) else None

    def already_reported(self, path: DataPath) -> bool:
        return any(path[:end] in self.reported for end in range(len(path) + 1))


@dataclass(frozen=True, slots=True)
class UnsetReference:
    """A value written as one ``${NAME}`` whose variable is not set, at a path where the value
    may come from elsewhere (an option, the environment): read as unset, and named in the
    error only if no other source gives the value."""

    source: str
    line: int | None
    field: str
    variable: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.field} is ${{{self.variable}}}, which is not set"


def field_name(path: DataPath) -> str:
    """``promotions[0].transitions[1].from`` for ``("promotions", 0, "transitions", 1, "from")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_document(
    text: str,
    *,
    source: str,
    env: Mapping[str, str],
    verbatim: Collection[DataPath] = (),
    optional: Collection[DataPath] = (),
) -> SourceDocument:
    """Parse ``text``; values at the ``verbatim`` paths are kept as written, without ``${}``
    substitution, and a value at an ``optional`` path written as one ``${NAME}`` of an unset
    variable reads as empty (see :class:`UnsetReference`). Raises :class:`ManifestError` when
    the text is not a readable YAML document."""
    lines = Lines(text)
    try:
        if _nesting_bound(text) > SAFE_NESTING:
            _check_depth(text, source, lines)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            walker = _Walker(
                loader,
                source=source,
                env=env,
                verbatim=frozenset(verbatim),
                optional=frozenset(optional),
                lines=lines,
            )
            data = walker.walk(root, (), 0) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ManifestError([_syntax_problem(exc, text, source, lines)]) from None
    except (UnicodeError, RecursionError) as exc:
        message = f"cannot read the manifest: {exc}"
        raise ManifestError([ManifestProblem(source, None, "", message)]) from None
    return SourceDocument(
        source=source,
        data=data,
        root=root,
        lines=lines,
        problems=tuple(walker.problems),
        reported=frozenset(walker.reported),
        unset=tuple(walker.unset),
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building a large tree of new objects (YAML nodes,
    then data, then models) makes it run again and again over them, for nothing, since the
    trees hold no cycles. Loading a large manifest takes about half the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _nesting_bound(text: str) -> int:
    """A cheap upper bound of how deeply ``text`` can nest. A block collection nested in
    another starts further right (or, for a list under a key, in the same column), so block
    nesting is at most twice the longest line; flow nesting at most that of the brackets."""
    longest = max(map(len, text.split("\n")))  # YAML breaks lines at "\n" and elsewhere too
    flow = deepest = 0
    for bracket in _BRACKETS.findall(text):
        flow = flow + 1 if bracket in "[{" else flow - 1
        deepest = max(deepest, flow)
    return 2 * (longest + 1) + deepest


def _check_depth(text: str, source: str, lines: Lines) -> None:
    """Refuse deep nesting while it is still a stream of events: libyaml's composer recurses
    without a limit, and crashes the process on nesting thousands of levels deep."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = lines.of(event.start_mark)
                message = f"lists and mappings nest more than {MAX_DEPTH} levels deep"
                raise ManifestError([ManifestProblem(source, line, "", message)])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _syntax_problem(exc: yaml.YAMLError, text: str, source: str, lines: Lines) -> ManifestProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = lines.of(mark)
        if exc.context == "expected a single document in the stream":
            return ManifestProblem(
                source, line, "", "a manifest is one YAML document: remove '---'"
            )
        what = exc.problem or "cannot be parsed"
        if "maximum nesting depth" in what:  # the parser's own limit, in newer PyYAML
            return ManifestProblem(
                source, line, "", f"lists and mappings nest more than {MAX_DEPTH} levels deep"
            )
        if exc.context:
            what = f"{what} ({exc.context})"
        column = f" at column {mark.column + 1}" if mark is not None else ""
        return ManifestProblem(source, line, "", f"not valid YAML{column}: {what}")
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return ManifestProblem(source, line, "", f"character {code:#06x} is not allowed in YAML")
    return ManifestProblem(source, None, "", f"not valid YAML: {exc}")


class _Walker:
    """Builds plain data from composed nodes, noting lines and problems on the way."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        *,
        source: str,
        env: Mapping[str, str],
        verbatim: frozenset[DataPath],
        optional: frozenset[DataPath],
        lines: Lines,
    ) -> None:
        self.loader = loader
        self.lines = lines
        self.source = source
        self.env = env
        self.verbatim = verbatim
        self.optional = optional
        self.unset: list[UnsetReference] = []
        self.problems: list[ManifestProblem] = []
        self.reported: set[DataPath] = set()
        self._seen: set[int] = set()
        self._open: set[int] = set()
        self._repeated = 0

    def problem(self, path: DataPath, node: Node, message: str) -> None:
        self.problems.append(
            ManifestProblem(self.source, self.lines.of(node.start_mark), field_name(path), message)
        )
        self.reported.add(path)

    def fatal(self, path: DataPath, node: Node, message: str) -> ManifestError:
        line = self.lines.of(node.start_mark)
        return ManifestError([ManifestProblem(self.source, line, field_name(path), message)])

    def walk(self, node: Node, path: DataPath, depth: int) -> object:
        first_visit = id(node) not in self._seen
        if first_visit:
            self._seen.add(id(node))
        else:
            self._repeated += 1
            if self._repeated > MAX_ALIAS_EXPANSION:
                message = f"aliases repeat more than {MAX_ALIAS_EXPANSION} values; write them out"
                raise self.fatal(path, node, message)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._open:
            raise self.fatal(path, node, "an alias refers to the list or mapping it is in")
        if depth >= MAX_DEPTH:
            message = f"lists and mappings nest more than {MAX_DEPTH} levels deep"
            raise self.fatal((), node, message)
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self.check_tag(node, path, _SEQ_TAG)
                return self.sequence(node, path, depth)
            assert isinstance(node, MappingNode)
            self.check_tag(node, path, _MAP_TAG)
            return self.mapping(node, path, depth, first_visit=first_visit)
        finally:
            self._open.discard(id(node))

    def check_tag(self, node: Node, path: DataPath, expected: str) -> None:
        if node.tag != expected:
            self.problem(path, node, f"YAML tag {node.tag} is not supported here")

    def sequence(self, node: SequenceNode, path: DataPath, depth: int) -> list[object]:
        items: list[object] = []
        for index, child in enumerate(node.value):
            items.append(self.walk(child, (*path, index), depth + 1))
        return items

    def mapping(
        self, node: MappingNode, path: DataPath, depth: int, *, first_visit: bool
    ) -> dict[str, object]:
        if first_visit:
            self.check_duplicates(node, path)
            try:
                self.loader.flatten_mapping(node)  # resolves "<<: *defaults" merge keys
            except yaml.YAMLError as exc:
                self.problem(path, node, f"cannot merge: {getattr(exc, 'problem', exc)}")
                node.value = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(path, key_node, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            result[key] = self.walk(value_node, (*path, key), depth + 1)
        return result

    def check_duplicates(self, node: MappingNode, path: DataPath) -> None:
        first: dict[str, _Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            if key_node.value in first:
                message = (
                    f"'{key_node.value}' is given twice (first at line "
                    f"{self.lines.of(first[key_node.value])}); give each key once"
                )
                self.problem((*path, key_node.value), key_node, message)
            else:
                first[key_node.value] = key_node.start_mark

    def scalar(self, node: ScalarNode, path: DataPath) -> object:
        if node.tag == _STR_TAG:
            value: object = node.value  # most scalars; construct_object would return the same
        else:
            try:
                value = self.loader.construct_object(node)
            except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
                reason = getattr(exc, "problem", None) or str(exc)
                self.problem(path, node, f"cannot read {node.value!r}: {reason}")
                return node.value
        if isinstance(value, str) and "$" in value and path not in self.verbatim:
            return self.substitute(value, path, node)
        return value

    def substitute(self, text: str, path: DataPath, node: Node) -> str:
        whole = _REFERENCE.fullmatch(text.strip())
        if (
            path in self.optional
            and whole is not None
            and whole.group(1) is not None
            and whole.group(2) is None
            and whole.group(1) not in self.env
        ):
            line = self.lines.of(node.start_mark)
            self.unset.append(UnsetReference(self.source, line, field_name(path), whole.group(1)))
            return ""
        messages: list[str] = []

        def replace(match: re.Match[str]) -> str:
            whole, name, default = match.group(0), match.group(1), match.group(2)
            if whole == "$${":
                return "${"
            if name is None:
                messages.append(
                    "'${' starts no ${NAME} or ${NAME:-default} reference; "
                    "write $${ for a literal ${"
                )
                return whole
            value = self.env.get(name)
            if default is not None and not value:
                return default
            if value is None:
                messages.append(f"environment variable {name} is not set")
                return whole
            return value

        result = _REFERENCE.sub(replace, text)
        for message in dict.fromkeys(messages):
            self.problem(path, node, message)
        return result
