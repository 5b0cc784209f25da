"""Renders the chat-template fixtures with the reference: PyPI jinja2, configured as
Hugging Face transformers configures it for chat templates (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, the loopcontrols extension, a `generation` block that renders
its body, `tojson` as json.dumps with ensure_ascii=False, and the globals raise_exception
and strftime_now). Our own templates and inputs live in tests/fixtures/chat_templates/;
this writes expected.json there.

    python3 -m venv /tmp/venv-templates
    /tmp/venv-templates/bin/pip install -r tools/requirements-templates.txt
    /tmp/venv-templates/bin/python tools/gen_template_fixtures.py
"""

import json
import pathlib
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "chat_templates"
# strftime_now reads this instead of the clock, so the output is reproducible.
FIXED_NOW = datetime(2026, 3, 7, 14, 5, 9)


class GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}` renders its body (transformers marks assistant spans with it)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body).set_lineno(lineno)


class TemplateRaised(Exception):
    pass


def raise_exception(message):
    raise TemplateRaised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: FIXED_NOW.strftime(fmt)
    return env


def render(env, source, context):
    try:
        return {"output": env.from_string(source).render(**context)}
    except TemplateRaised as e:
        return {"raised": str(e)}
    except jinja2.TemplateError as e:
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    env = environment()
    conversations = json.loads((DIR / "conversations.json").read_text())
    chats = []
    for path in sorted(DIR.glob("*.jinja")):
        source = path.read_text()
        for name, conv in conversations.items():
            for agp in (False, True):
                context = {
                    "messages": conv["messages"],
                    "tools": conv.get("tools"),
                    "documents": None,
                    "add_generation_prompt": agp,
                    "bos_token": conv["bos_token"],
                    "eos_token": conv["eos_token"],
                    **conv.get("extra", {}),
                }
                chats.append({"template": path.name, "conversation": name, "add_generation_prompt": agp,
                              **render(env, source, context)})
    snippets = []
    for i, s in enumerate(json.loads((DIR / "snippets.json").read_text())):
        snippets.append({"index": i, **render(env, s["template"], s["context"])})
    out = {
        "generator": "tools/gen_template_fixtures.py",
        "jinja2": jinja2.__version__,
        "now": FIXED_NOW.isoformat(),
        "chats": chats,
        "snippets": snippets,
    }
    (DIR / "expected.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(chats)} chat renders, {len(snippets)} snippets -> {DIR / 'expected.json'}")


if __name__ == "__main__":
    main()
