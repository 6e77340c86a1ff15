#!/usr/bin/env python3
"""Validates one advisory export against the official JSON schema of its format.

Usage: validate_schema.py SCHEMA_DIR FORMAT FILE
  SCHEMA_DIR  the offline schema copies (../shared/schemas: see its README.md)
  FORMAT      osv | cve5 | csaf
  FILE        the JSON document, or - for stdin

Exit 0: valid. Exit 1: invalid, every error printed to stdout with its path.
Exit 2: cannot validate (no jsonschema, unreadable schema or document); tests/export.rs
treats that as a failure, never as a skip.

Written for Debian 12's python3-jsonschema 4.10, which has no `referencing` module: the
CSAF schema's external CVSS `$ref`s are resolved with `RefResolver` from a local store,
so nothing is ever fetched. Where a newer jsonschema with `referencing` is the one
installed (a venv, pyenv), the same store is given as a `referencing` registry.
"""

import json
import pathlib
import sys

SCHEMAS = {
    "osv": "osv.schema.json",
    "cve5": "cve5.schema.json",
    "csaf": "csaf-2.0.schema.json",
}

# The CVSS schemas CSAF 2.0 points to. Its `$ref`s carry no `?date` query but each file's
# own id does, so every file is registered under both (schemas README, "Resolving...").
CVSS_FILES = ("cvss-v2.0.json", "cvss-v3.0.json", "cvss-v3.1.json")


def fail(msg):
    print(f"validate_schema: {msg}", file=sys.stderr)
    sys.exit(2)


def where(error):
    return "/".join(str(p) for p in error.absolute_path) or "(root)"


def short(message):
    """jsonschema quotes the whole failing instance, the whole document at the root."""
    return message if len(message) <= 300 else message[:300] + "..."


def refs(store, schema):
    """How the validator finds the CVSS schemas: `referencing` where it exists
    (jsonschema >= 4.18, whose RefResolver no longer switches scope correctly into the
    draft-04 CVSS files), else RefResolver (Debian 12's 4.10)."""
    try:
        from referencing import Registry, Resource
    except ImportError:
        import jsonschema

        return {"resolver": jsonschema.RefResolver.from_schema(schema, store=store)}
    return {"registry": Registry().with_resources((uri, Resource.from_contents(c)) for uri, c in store.items())}


def main(argv):
    if len(argv) != 4 or argv[2] not in SCHEMAS:
        fail("usage: validate_schema.py SCHEMA_DIR osv|cve5|csaf FILE|-")
    try:
        import jsonschema
    except ImportError:
        fail(f"python jsonschema is missing for {sys.executable}: apt-get install python3-jsonschema")

    schema_dir = pathlib.Path(argv[1])
    try:
        schema = json.loads((schema_dir / SCHEMAS[argv[2]]).read_text(encoding="utf-8"))
        store = {}
        for name in CVSS_FILES:
            cvss = json.loads((schema_dir / name).read_text(encoding="utf-8"))
            store[f"https://www.first.org/cvss/{name}"] = cvss
            store[cvss.get("$id") or cvss["id"]] = cvss
        text = sys.stdin.read() if argv[3] == "-" else pathlib.Path(argv[3]).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError, KeyError) as e:
        fail(f"cannot read: {e}")

    cls = jsonschema.validators.validator_for(schema)
    try:
        # A broken or mis-copied schema would accept anything: check it first.
        cls.check_schema(schema)
        # Formats (date-time, uri) are checked only as far as the installed optional
        # checkers allow; the patterns that matter (timestamps, ids) are always enforced.
        kwargs = {}
        checker = getattr(cls, "FORMAT_CHECKER", None)
        if checker is not None:
            kwargs["format_checker"] = checker
        validator = cls(schema, **kwargs, **refs(store, schema))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    except Exception as e:  # noqa: BLE001 - a crash must never read as "invalid" (exit 1)
        fail(f"validation could not run: {type(e).__name__}: {e}")
    for e in errors:
        print(f"{where(e)}: {short(e.message)}")
        # A oneOf/anyOf failure says little by itself; its branches' errors say why.
        for sub in sorted(e.context or [], key=lambda s: list(s.absolute_path))[:8]:
            print(f"    {where(sub)}: {short(sub.message)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
