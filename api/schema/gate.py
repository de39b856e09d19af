"""What a GraphQL document may cost, measured before graphql-core's validation runs (issue #10, items 1, 3, 11).

graphql-core's standard rules and Strawberry's depth and alias limiters walk a document with its fragments expanded:
20 fragments that each spread the next twice are a million fields to them, and OverlappingFieldsCanBeMergedRule
compares every pair of same-named fields in a selection set (700 copies of ``viewer{id}``: 245,000 comparisons). So a
document is measured first here, in time linear in its size, with every fragment measured once (memoised):

1. fields after expansion, depth and aliases — counted per fragment and multiplied, never expanded;
2. the pairs of same-named fields the merging rule would compare (a bound on its quadratic work, computed from per-name
   sums, not by pairing);
3. the operation's cost: each field 1, and a field's sub-selection counted ``first`` times for a connection (its
   default ``first`` when omitted) or ``LIST_FACTOR`` times for a plain list.

A document over any bound is refused with a coded error naming the setting, before any other walk. Only a document
within all of them reaches the (cached) standard validation.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any, Iterator

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_introspection_type,
)
from graphql.validation import ValidationRule
from strawberry.extensions import ValidationCache

LIST_FACTOR = 10  # how many items a plain list field (no `first`) is assumed to hold
INTROSPECTION_ROOTS = frozenset({"__schema", "__type", "__typename"})


@dataclass(frozen=True)
class Limits:
    max_fields: int
    max_depth: int
    max_aliases: int
    max_field_pairs: int
    max_cost: int
    page_max: int


class Refused(Exception):
    def __init__(self, code: str, setting: str, limit: int, actual: int | None, message: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(
            message,
            extensions={"code": code, "limit": setting, "max": limit, **({} if actual is None else {"actual": actual})},
        )


def _too_complex(setting: str, limit: int, actual: int | None, what: str) -> Refused:
    return Refused("QUERY_TOO_COMPLEX", setting, limit, actual, f"查询过于复杂：{what}超过上限 {limit}（{setting}）")


class _Measure:
    """One document's measurements; each selection set and each fragment is walked once per pass."""

    def __init__(self, document: Any, limits: Limits) -> None:
        self.limits = limits
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.fragments.setdefault(definition.name.value, definition)
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
        # pass 1: per selection set (by node identity) and per fragment name: (fields, depth, aliases)
        self.sizes: dict[int, tuple[int, int, int]] = {}
        self.fragment_sizes: dict[str, tuple[int, int, int]] = {}
        self.visiting: set[str] = set()  # fragment cycles are the standard rules' to report; here they count 0

    # -- pass 1: expanded fields, depth, aliases --------------------------------------------------------------------
    def size(self, selection_set: SelectionSetNode | None) -> tuple[int, int, int]:
        if selection_set is None:
            return 0, 0, 0
        known = self.sizes.get(id(selection_set))
        if known is not None:
            return known
        fields = depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                f, d, a = self.size(selection.selection_set)
                fields += 1 + f
                if not selection.name.value.startswith("__"):  # introspection is not depth, as Strawberry counted
                    depth = max(depth, 1 + d)
                aliases += a + (1 if selection.alias else 0)
            elif isinstance(selection, InlineFragmentNode):
                f, d, a = self.size(selection.selection_set)
                fields, depth, aliases = fields + f, max(depth, d), aliases + a
            elif isinstance(selection, FragmentSpreadNode):
                f, d, a = self.fragment_size(selection.name.value)
                fields, depth, aliases = fields + f, max(depth, d), aliases + a
        self.check_counts(fields, aliases)
        self.sizes[id(selection_set)] = result = (fields, depth, aliases)
        return result

    def fragment_size(self, name: str) -> tuple[int, int, int]:
        known = self.fragment_sizes.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return 0, 0, 0
        self.visiting.add(name)
        result = self.size(fragment.selection_set)
        self.visiting.discard(name)
        self.fragment_sizes[name] = result
        return result

    def check_counts(self, fields: int, aliases: int) -> None:
        """Counts only grow towards the root: a set over the bound is refused at once, its parents unwalked."""
        limits = self.limits
        if fields > limits.max_fields:
            raise _too_complex("JIANSHEN_GRAPHQL_MAX_FIELDS", limits.max_fields, fields, "展开片段后的字段数")
        if aliases > limits.max_aliases:
            raise _too_complex("JIANSHEN_GRAPHQL_MAX_ALIASES", limits.max_aliases, aliases, "别名数")

    def check_sizes(self) -> None:
        for name in self.fragments:
            self.fragment_size(name)
        for operation in self.operations:
            # Depth is an operation's: a fragment used only under introspection (not counted) may be deep.
            depth = self.size(operation.selection_set)[1] - 1  # a root field's children are at depth 1, as before
            if depth > self.limits.max_depth:
                raise _too_complex("JIANSHEN_GRAPHQL_MAX_DEPTH", self.limits.max_depth, depth, "嵌套深度")

    # -- pass 2: the pairs the field-merging rule compares ---------------------------------------------------------
    def field_pairs(self) -> int:
        """An upper estimate of OverlappingFieldsCanBeMergedRule's work: in every selection set of the document (the
        rule visits each once), the fields it gathers (through spreads too) are compared pairwise by response name, and
        each compared pair compares their sub-trees. For a name with fields of sub-tree sizes a_i that is
        Σ_{i<j} (1 + a_i·a_j), computed from Σa and Σa² — never by pairing."""
        groups_of: dict[int, dict[str, list[int]]] = {}
        fragment_groups: dict[str, dict[str, list[int]]] = {}
        visiting: set[str] = set()

        def groups(selection_set: SelectionSetNode) -> dict[str, list[int]]:
            known = groups_of.get(id(selection_set))
            if known is not None:
                return known
            merged: dict[str, list[int]] = {}

            def add(name: str, count: int, total: int, squares: int) -> None:
                entry = merged.get(name)
                if entry is None:
                    merged[name] = [count, total, squares]
                else:
                    entry[0] += count
                    entry[1] += total
                    entry[2] += squares

            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    below = self.size(selection.selection_set)[0]
                    add((selection.alias or selection.name).value, 1, below, below * below)
                elif isinstance(selection, InlineFragmentNode):
                    for name, (c, t, s) in groups(selection.selection_set).items():
                        add(name, c, t, s)
                elif isinstance(selection, FragmentSpreadNode):
                    for name, (c, t, s) in fragment(selection.name.value).items():
                        add(name, c, t, s)
            groups_of[id(selection_set)] = merged
            return merged

        def fragment(name: str) -> dict[str, list[int]]:
            known = fragment_groups.get(name)
            if known is not None:
                return known
            definition = self.fragments.get(name)
            if definition is None or name in visiting:
                return {}
            visiting.add(name)
            result = groups(definition.selection_set)
            visiting.discard(name)
            fragment_groups[name] = result
            return result

        pairs = 0
        limit = self.limits.max_field_pairs
        for selection_set in self._selection_sets():
            spreads = sum(isinstance(s, FragmentSpreadNode) for s in selection_set.selections)
            pairs += spreads * (spreads - 1) // 2  # the rule also compares every pair of spread fragments
            for count, total, squares in groups(selection_set).values():
                if count > 1:
                    pairs += count * (count - 1) // 2 + (total * total - squares) // 2
            if pairs > limit:
                raise _too_complex("JIANSHEN_GRAPHQL_MAX_FIELD_PAIRS", limit, None, "同名字段的比较次数")
        return pairs

    def _selection_sets(self) -> Iterator[SelectionSetNode]:
        stack = [op.selection_set for op in self.operations] + [f.selection_set for f in self.fragments.values()]
        while stack:
            selection_set = stack.pop()
            yield selection_set
            for selection in selection_set.selections:
                if isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set is not None:
                    stack.append(selection.selection_set)

    # -- pass 3: cost ----------------------------------------------------------------------------------------------
    def cost(self, schema: Any, variables: dict[str, Any] | None) -> int:
        defaults = {  # a variable the request leaves out takes its default from the document
            definition.variable.name.value: int(definition.default_value.value)
            for op in self.operations
            for definition in op.variable_definitions or ()
            if isinstance(definition.default_value, IntValueNode) and len(definition.default_value.value) < 10
        }
        variables = self.variables_read = _Recording({**defaults, **(variables if isinstance(variables, dict) else {})})
        fragment_costs: dict[str, int] = {}
        visiting: set[str] = set()
        page_max = self.limits.page_max

        def multiplier(field_def: Any, node: FieldNode, parent: Any) -> int:
            argument = field_def.args.get("first")
            if argument is not None:
                value = argument.default_value
                for given in node.arguments or ():
                    if given.name.value == "first":
                        if isinstance(given.value, IntValueNode):
                            value = int(given.value.value) if len(given.value.value) < 10 else page_max
                        elif isinstance(given.value, VariableNode):
                            value = variables.get(given.value.name.value, value)
                if not isinstance(value, int) or isinstance(value, bool):
                    value = page_max
                return max(0, min(value, page_max))
            field_type = field_def.type
            if isinstance(field_type, GraphQLNonNull):
                field_type = field_type.of_type
            if isinstance(field_type, GraphQLList):
                if parent is not None and parent.name.endswith("Connection") and node.name.value in ("edges", "nodes"):
                    return 1  # counted at the connection's `first`
                return LIST_FACTOR
            return 1

        def named(type_: Any) -> Any:
            while isinstance(type_, (GraphQLNonNull, GraphQLList)):
                type_ = type_.of_type
            return type_

        def set_cost(selection_set: SelectionSetNode | None, parent: Any) -> int:
            if selection_set is None:
                return 0
            total = 0
            fields = getattr(parent, "fields", None) or {}
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    field_def = fields.get(selection.name.value)
                    if field_def is None:  # unknown or meta field: the standard rules answer it
                        total += 1 + set_cost(selection.selection_set, None)
                    else:
                        below = set_cost(selection.selection_set, named(field_def.type))
                        total += 1 + multiplier(field_def, selection, parent) * below
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    inner = schema.get_type(condition.name.value) if condition is not None else parent
                    total += set_cost(selection.selection_set, inner)
                elif isinstance(selection, FragmentSpreadNode):
                    total += fragment_cost(selection.name.value)
            return total

        def fragment_cost(name: str) -> int:
            known = fragment_costs.get(name)
            if known is not None:
                return known
            definition = self.fragments.get(name)
            if definition is None or name in visiting:
                return 0
            visiting.add(name)
            result = set_cost(definition.selection_set, schema.get_type(definition.type_condition.name.value))
            visiting.discard(name)
            fragment_costs[name] = result
            return result

        roots = {"query": schema.query_type, "mutation": schema.mutation_type, "subscription": schema.subscription_type}
        return max(
            (set_cost(op.selection_set, roots.get(op.operation.value)) for op in self.operations), default=0
        )


class _Recording(dict):
    """The variables, remembering which the cost read (the `first` of a connection): only those change it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.names: set[str] = set()

    def get(self, name: Any, default: Any = None) -> Any:
        self.names.add(name)
        return super().get(name, default)


# Measures of the documents seen (by identity: Strawberry's parser cache hands the same document to each request that
# sends the same text), per the values of the variables their cost read. Issue #13: measuring the progress document on
# every request cost ~0.2 ms. Bounded; a refused document is measured again each time.
_MEASURED: dict[int, tuple[Any, Limits, Any, frozenset[str], dict[tuple, int]]] = {}
MEASURED_KEPT = 512


def _values_key(variables: Any, names: frozenset[str]) -> tuple | None:
    variables = variables if isinstance(variables, dict) else {}
    key = tuple((name, type(variables.get(name)).__name__, variables.get(name)) for name in sorted(names))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def measure(document: Any, schema: Any, variables: dict[str, Any] | None, limits: Limits) -> int:
    """The document's cost, or ``Refused`` naming the first bound it passes."""
    known = _MEASURED.get(id(document))
    if known is not None and known[0]() is document and known[1] is limits and known[2] is schema:
        values = _values_key(variables, known[3])
        if values is not None and values in known[4]:
            return known[4][values]
    try:
        measured = _Measure(document, limits)
        measured.check_sizes()
        measured.field_pairs()
        cost = measured.cost(schema, variables)
    except RecursionError:
        raise _too_complex("JIANSHEN_GRAPHQL_MAX_DEPTH", limits.max_depth, None, "片段嵌套") from None
    if cost <= limits.max_cost:
        names = frozenset(measured.variables_read.names)
        values = _values_key(variables, names)
        if values is not None:
            try:
                reference = weakref.ref(document)
            except TypeError:
                reference = None
            if reference is not None:
                if known is None or known[0]() is not document or known[1] is not limits or known[2] is not schema:
                    known = (reference, limits, schema, names, {})
                    if len(_MEASURED) >= MEASURED_KEPT:
                        _MEASURED.pop(next(iter(_MEASURED)))
                    _MEASURED[id(document)] = known
                if len(known[4]) < MEASURED_KEPT:
                    known[4][values] = cost
    if cost > limits.max_cost:
        raise Refused(
            "QUERY_TOO_COSTLY", "JIANSHEN_GRAPHQL_MAX_COST", limits.max_cost, cost,
            f"查询代价过高：估算 {cost}，上限 {limits.max_cost}（JIANSHEN_GRAPHQL_MAX_COST），请减少 first 或字段",
        )
    return cost


def only_introspection(document: Any) -> bool:
    """Every operation of the document asks only about the schema (``__schema``, ``__type``, ``__typename``)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(
        isinstance(s, FieldNode) and s.name.value in INTROSPECTION_ROOTS
        for op in operations
        for s in op.selection_set.selections
    )


class NoIntrospection(ValidationRule):
    """graphql-core's NoSchemaIntrospectionCustomRule, answering with our code and in Chinese (``__typename`` stays)."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        type_ = get_named_type(self.context.get_type())
        if type_ and is_introspection_type(type_):
            self.report_error(GraphQLError(
                f"本服务不提供 schema 自省（字段 {node.name.value}；JIANSHEN_GRAPHQL_INTROSPECTION）", node,
                extensions={"code": "INTROSPECTION_DISABLED", "limit": "JIANSHEN_GRAPHQL_INTROSPECTION"},
            ))


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(errors: list[GraphQLError] | None) -> None:
    """Production names no field, type or value the client did not send ("Did you mean 'viewer'?")."""
    for error in errors or ():
        if "Did you mean" in error.message:
            error.message = _SUGGESTION.sub("", error.message)


class GatedValidation(ValidationCache):
    """Measures the document (above) and refuses it before graphql-core's rules see it; a document within bounds is
    validated through Strawberry's shared validation cache. In production, suggestions are cut from the messages."""

    def __init__(self, limits: Limits, *, hide_suggestions: bool, maxsize: int = 256) -> None:
        super().__init__(maxsize=maxsize)
        self.limits = limits
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors:  # refused before (api/schema/trusted.py): nothing to validate
            yield
            return
        try:
            measure(context.graphql_document, context.schema._schema, context.variables, self.limits)
        except Refused as refused:
            context.pre_execution_errors = [refused.error]
            yield
            return
        yield from super().on_validate()
        if self.hide_suggestions:
            without_suggestions(context.pre_execution_errors)

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if self.hide_suggestions and result is not None:
            without_suggestions(getattr(result, "errors", None))
