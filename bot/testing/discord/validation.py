"""The checks Discord makes on what a bot sends: message limits and application command schemas.

Each check returns ``(path, message)`` problems, which :func:`~.protocol.form_error` turns into the
400 Invalid Form Body answer Discord gives.
"""

from __future__ import annotations

from typing import Any

from .protocol import COMMAND_NAME, FLAG_COMPONENTS_V2, JSON, SELECT_TYPES

Problems = list[tuple[str, str]]


def walk_components(components: list[Any]) -> list[JSON]:
    """Every component, depth first (action rows, v2 containers/sections/labels included)."""
    out: list[JSON] = []
    for comp in components:
        if not isinstance(comp, dict):
            continue
        out.append(comp)
        out.extend(walk_components(list(comp.get("components") or [])))
        for key in ("accessory", "component"):
            child = comp.get(key)
            if isinstance(child, dict):
                out.extend(walk_components([child]))
    return out


def validate_message(
    content: str | None, embeds: list[JSON], components: list[JSON], flags: int, attachment_count: int
) -> Problems:
    """The limits Discord enforces that a bot can realistically trip over."""
    problems: Problems = []
    v2 = bool(flags & FLAG_COMPONENTS_V2)
    if content is not None and len(content) > 2000:
        problems.append(("content", "Must be 2000 or fewer in length."))
    if v2 and (content or embeds):
        problems.append(("content", "Cannot send content or embeds with the IS_COMPONENTS_V2 flag."))
    if len(embeds) > 10:
        problems.append(("embeds", "Must be 10 or fewer in length."))
    total = 0
    for i, embed in enumerate(embeds):
        problems.extend(_embed_problems(embed, f"embeds.{i}"))
        total += _embed_size(embed)
    if total > 6000:
        problems.append(("embeds", "Embed size exceeds maximum size of 6000"))
    if attachment_count > 10:
        problems.append(("attachments", "Must be 10 or fewer in length."))
    if not v2:
        problems.extend(_action_row_problems(components))
    problems.extend(_component_problems(components))
    return problems


def _embed_size(embed: JSON) -> int:
    """The characters Discord counts towards the 6000 a message's embeds may hold together."""
    texts = [embed.get("title") or "", embed.get("description") or ""]
    texts += [(embed.get("footer") or {}).get("text") or "", (embed.get("author") or {}).get("name") or ""]
    for fld in embed.get("fields") or []:
        texts += [str(fld.get("name", "")), str(fld.get("value", ""))]
    return sum(len(text) for text in texts)


def _embed_problems(embed: JSON, path: str) -> Problems:
    problems: Problems = []
    for key, limit in (("title", 256), ("description", 4096)):
        if len(embed.get(key) or "") > limit:
            problems.append((f"{path}.{key}", f"Must be {limit} or fewer in length."))
    if len((embed.get("footer") or {}).get("text") or "") > 2048:
        problems.append((f"{path}.footer.text", "Must be 2048 or fewer in length."))
    if len((embed.get("author") or {}).get("name") or "") > 256:
        problems.append((f"{path}.author.name", "Must be 256 or fewer in length."))
    fields = embed.get("fields") or []
    if len(fields) > 25:
        problems.append((f"{path}.fields", "Must be 25 or fewer in length."))
    for j, fld in enumerate(fields):
        name, value = str(fld.get("name", "")), str(fld.get("value", ""))
        if not name or len(name) > 256:
            problems.append((f"{path}.fields.{j}.name", "Must be between 1 and 256 in length."))
        if not value or len(value) > 1024:
            problems.append((f"{path}.fields.{j}.value", "Must be between 1 and 1024 in length."))
    return problems


def _action_row_problems(components: list[JSON]) -> Problems:
    """Classic (non-v2) layout: at most 5 action rows of 1-5 buttons or a single select."""
    problems: Problems = []
    if len(components) > 5:
        problems.append(("components", "Must be 5 or fewer in length."))
    for i, row in enumerate(components):
        if row.get("type") != 1:
            problems.append((f"components.{i}.type", "Top-level components must be action rows."))
            continue
        children = row.get("components") or []
        selects = [c for c in children if c.get("type") in SELECT_TYPES]
        if not children or len(children) > 5 or (selects and len(children) > 1):
            problems.append((f"components.{i}.components", "An action row holds 1-5 buttons or 1 select."))
    return problems


def _component_problems(components: list[JSON]) -> Problems:
    """custom_id presence, length and uniqueness, and button label length, at any depth."""
    problems: Problems = []
    seen: set[str] = set()
    for comp in walk_components(components):
        custom_id = comp.get("custom_id")
        if comp.get("type") == 2 and comp.get("style") not in (5, 6) and not custom_id:
            problems.append(("components", "A non-link button needs a custom_id."))
        if custom_id is not None:
            if not 1 <= len(str(custom_id)) <= 100:
                problems.append(("components", f"custom_id {custom_id!r} must be 1-100 characters."))
            if custom_id in seen:
                problems.append(("components", f"Duplicate custom_id {custom_id!r}."))
            seen.add(str(custom_id))
        label = comp.get("label")
        if comp.get("type") == 2 and label is not None and len(str(label)) > 80:
            problems.append(("components", "A button label must be 80 or fewer characters."))
    return problems


def validate_modal(data: JSON) -> Problems:
    """Discord's checks on a modal (callback type 9): title, custom_id, 1-5 top-level components, each a
    label around one input (or the older action row around one text input), with their length limits."""
    problems: Problems = []
    if not 1 <= len(str(data.get("title") or "")) <= 45:
        problems.append(("data.title", "Must be between 1 and 45 in length."))
    if not 1 <= len(str(data.get("custom_id") or "")) <= 100:
        problems.append(("data.custom_id", "Must be between 1 and 100 in length."))
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        problems.append(("data.components", "Must be between 1 and 5 in length."))
    for i, top in enumerate(components):
        path = f"data.components.{i}"
        if top.get("type") == 18:
            if not 1 <= len(str(top.get("label") or "")) <= 45:
                problems.append((f"{path}.label", "Must be between 1 and 45 in length."))
            if len(str(top.get("description") or "")) > 100:
                problems.append((f"{path}.description", "Must be 100 or fewer in length."))
            inner = top.get("component")
            if not isinstance(inner, dict) or inner.get("type") not in (4, *SELECT_TYPES):
                problems.append((f"{path}.component", "A label holds one text input or select."))
            else:
                problems.extend(_modal_input_problems(inner, f"{path}.component", in_label=True))
        elif top.get("type") == 1:
            children = top.get("components") or []
            if len(children) != 1 or children[0].get("type") != 4:
                problems.append((f"{path}.components", "An action row in a modal holds one text input."))
            else:
                problems.extend(_modal_input_problems(children[0], f"{path}.components.0", in_label=False))
        elif top.get("type") != 10:  # a text display
            problems.append((f"{path}.type", "A modal holds labels, text displays or action rows."))
    problems.extend(_component_problems(components))
    return problems


def _modal_input_problems(comp: JSON, path: str, *, in_label: bool) -> Problems:
    problems: Problems = []
    if not comp.get("custom_id"):
        problems.append((f"{path}.custom_id", "This field is required."))
    if comp.get("type") == 4:
        label = comp.get("label")
        if not in_label and not 1 <= len(str(label or "")) <= 45:
            problems.append((f"{path}.label", "Must be between 1 and 45 in length."))
        if comp.get("style") not in (1, 2):
            problems.append((f"{path}.style", "Must be 1 (short) or 2 (paragraph)."))
        low, high = comp.get("min_length"), comp.get("max_length")
        if low is not None and not 0 <= int(low) <= 4000:
            problems.append((f"{path}.min_length", "Must be between 0 and 4000."))
        if high is not None and not 1 <= int(high) <= 4000:
            problems.append((f"{path}.max_length", "Must be between 1 and 4000."))
        if len(str(comp.get("placeholder") or "")) > 100:
            problems.append((f"{path}.placeholder", "Must be 100 or fewer in length."))
        if len(str(comp.get("value") or "")) > 4000:  # the value it opens filled with
            problems.append((f"{path}.value", "Must be 4000 or fewer in length."))
        return problems
    options = comp.get("options") or []
    if comp.get("type") == 3 and not 1 <= len(options) <= 25:
        problems.append((f"{path}.options", "Must be between 1 and 25 in length."))
    values = [str(option.get("value") or "") for option in options]
    if len(set(values)) != len(values):
        problems.append((f"{path}.options", "Option values must be unique."))
    for j, option in enumerate(options):
        if not 1 <= len(str(option.get("label") or "")) <= 100:
            problems.append((f"{path}.options.{j}.label", "Must be between 1 and 100 in length."))
        if not 1 <= len(str(option.get("value") or "")) <= 100:
            problems.append((f"{path}.options.{j}.value", "Must be between 1 and 100 in length."))
        if len(str(option.get("description") or "")) > 100:
            problems.append((f"{path}.options.{j}.description", "Must be 100 or fewer in length."))
    low, high = int(comp.get("min_values", 1)), int(comp.get("max_values", 1))
    if not 0 <= low <= 25 or not 1 <= high <= 25 or low > high:
        problems.append((f"{path}.min_values", "min_values must be 0-25, max_values 1-25, and not above it."))
    if sum(1 for option in options if option.get("default")) > high:
        problems.append((f"{path}.options", "More options are chosen by default than max_values allows."))
    if len(str(comp.get("placeholder") or "")) > 150:
        problems.append((f"{path}.placeholder", "Must be 150 or fewer in length."))
    return problems


def validate_commands(commands: Any) -> Problems:
    """Discord's checks on a bulk command overwrite (names, descriptions, option order and counts)."""
    if not isinstance(commands, list):
        return [("_", "Expected a list of commands.")]
    problems: Problems = []
    if len(commands) > 110:
        problems.append(("_", "Too many application commands."))
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        if not isinstance(cmd, dict):
            problems.append((str(i), "Expected an object."))
            continue
        ctype = int(cmd.get("type", 1))
        name = str(cmd.get("name", ""))
        if (combined := _combined_length(cmd)) > COMMAND_COMBINED_MAX:
            # Discord refuses the whole overwrite: every command of the bot would be left unregistered.
            problems.append((f"{i}", f"Command exceeds maximum size ({combined} > {COMMAND_COMBINED_MAX})."))
        if (ctype, name) in seen:
            problems.append((f"{i}.name", f"Application command names must be unique ({name!r})."))
        seen.add((ctype, name))
        if ctype == 1:
            problems.extend(_validate_option_level(cmd, str(i)))
            continue
        # User and message context menus: any case and spaces in the name; no description, no options.
        if not 1 <= len(name) <= 32:
            problems.append((f"{i}.name", "Must be between 1 and 32 in length."))
        if cmd.get("description"):
            problems.append((f"{i}.description", "Context menu commands cannot have a description."))
        if cmd.get("options"):
            problems.append((f"{i}.options", "Context menu commands cannot have options."))
    return problems


# Discord's limit on the characters of a command's name, description and value properties, its options' (subcommands
# and groups included) and their choices', all together.
COMMAND_COMBINED_MAX = 4000


def _combined_length(node: JSON) -> int:
    """The characters a command (or an option) counts against COMMAND_COMBINED_MAX."""
    total = len(str(node.get("name", ""))) + len(str(node.get("description", "")))
    for choice in node.get("choices") or []:
        total += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
    return total + sum(_combined_length(option) for option in node.get("options") or [] if isinstance(option, dict))


def _validate_option_level(node: JSON, path: str) -> Problems:
    problems: Problems = []
    name = str(node.get("name", ""))
    if not COMMAND_NAME.match(name) or name != name.lower():
        problems.append((f"{path}.name", f"Invalid chat-input name {name!r} (lowercase, 1-32, no spaces)."))
    description = str(node.get("description", ""))
    if not 1 <= len(description) <= 100:
        problems.append((f"{path}.description", "Must be between 1 and 100 in length."))
    options = node.get("options") or []
    if len(options) > 25:
        problems.append((f"{path}.options", "Must be 25 or fewer in length."))
    seen_optional = False
    names: set[str] = set()
    for j, opt in enumerate(options):
        opt_path = f"{path}.options.{j}"
        if opt.get("name") in names:
            problems.append((f"{opt_path}.name", "Option names must be unique."))
        names.add(opt.get("name"))
        if opt.get("type") in (1, 2):
            problems.extend(_validate_option_level(opt, opt_path))
            continue
        problems.extend(
            (p, m) for p, m in _validate_option_level({**opt, "options": []}, opt_path) if not p.endswith("options")
        )
        if opt.get("required"):
            if seen_optional:
                problems.append((f"{opt_path}.required", "Required options must be placed before non-required."))
        else:
            seen_optional = True
        if len(opt.get("choices") or []) > 25:
            problems.append((f"{opt_path}.choices", "Must be 25 or fewer in length."))
    return problems
