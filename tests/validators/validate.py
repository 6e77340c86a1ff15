#!/usr/bin/env python3
"""Validates one advisory export with schemas that PyPI packages ship (never a copy here).

Usage: validate.py osv|cve5 FILE|-
  cve5  cvelib's CveRecord.validate: the whole record against the bundled CVE JSON 5 schema,
        then its CNA container against the published-container schema (what `cve publish`
        checks before it sends). cvelib 1.8.0 bundles schema 5.1.1, which accepts a 5.2.0
        record but predates 5.2's `packageURL`: each one is parsed by packageurl-python and
        must carry no version (5.2: versions go in `versions`).
  osv   the OSV project's JSON schema as the `osv` package ships it (1.7.3), with the
        private-use `x_` id prefix of 1.7.5 added (see with_private_prefix), with jsonschema.

Run with tests/validators/.venv/bin/python (tests/lib/install-deps.sh makes it).
Exit 0: valid. Exit 1: invalid, one line per error with its path.
Exit 2: cannot validate (a package missing, unreadable or non-JSON input): tests/export.rs
treats that as a failure, never as a skip.
"""

import importlib.util
import json
import pathlib
import sys


def cannot(msg):
    print(f"validate.py: {msg}", file=sys.stderr)
    sys.exit(2)


def where(error):
    return "/".join(str(p) for p in error.absolute_path) or "(root)"


def report(errors, prefix=""):
    for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        message = e.message if len(e.message) <= 300 else e.message[:300] + "..."
        print(f"{prefix}{where(e)}: {message}")
        # A oneOf/anyOf failure says little by itself; its branches say why.
        for sub in list(e.context or [])[:8]:
            print(f"    {where(sub)}: {sub.message[:300]}")
    return len(errors)


def osv_schema():
    """The schema file inside the installed `osv` package, found without importing it (its
    __init__ needs Google Cloud libraries that are deliberately not installed)."""
    spec = importlib.util.find_spec("osv")
    if spec is None or not spec.submodule_search_locations:
        cannot("the osv package is missing: run tests/lib/install-deps.sh")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "osv-schema/validation/schema.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        cannot(f"cannot read the OSV schema {path}: {e}")
    return with_private_prefix(schema)


# The `id` prefix rule as OSV 1.7.5 states it: a known home database's prefix and a dash,
# or `x_` for ids outside any database ("private use"; secintake's drafts without a CVE).
# The packaged schema (1.7.3) predates `x_`; every other rule is the package's own.
PREFIX_PATTERN_START = "^("


def with_private_prefix(schema):
    prefix = schema.get("$defs", {}).get("prefix", {})
    pattern = prefix.get("pattern", "")
    if not pattern.startswith(PREFIX_PATTERN_START):
        cannot(f"the OSV schema's id prefix rule changed shape ({pattern[:60]!r}); revisit with_private_prefix")
    if "x_" not in pattern:
        prefix["pattern"] = "^(x_|" + pattern[1:] + ")"
    return schema


def validate_osv(doc):
    import jsonschema

    schema = osv_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return report(list(validator.iter_errors(doc)))


def validate_cve5(doc):
    from cvelib.cve_api import CveRecord, CveRecordValidationError

    count = 0
    checks = [("", doc, CveRecord.Schemas.V5_SCHEMA)]
    cna = doc.get("containers", {}).get("cna") if isinstance(doc, dict) else None
    if isinstance(cna, dict):
        checks.append(("containers/cna: ", cna, CveRecord.Schemas.CNA_PUBLISHED))
    for prefix, part, schema in checks:
        try:
            CveRecord.validate(part, schema_path=str(schema))
        except CveRecordValidationError as e:
            count += report(e.errors or [], prefix)
    return count + check_package_urls(cna)


def check_package_urls(cna):
    """CVE 5.2 `affected[].packageURL`: a purl without a version."""
    from packageurl import PackageURL

    count = 0
    affected = cna.get("affected", []) if isinstance(cna, dict) else []
    for i, product in enumerate(affected if isinstance(affected, list) else []):
        purl = product.get("packageURL") if isinstance(product, dict) else None
        if purl is None:
            continue
        where = f"containers/cna/affected/{i}/packageURL"
        try:
            parsed = PackageURL.from_string(purl) if isinstance(purl, str) else None
        except ValueError as e:
            parsed, why = None, str(e)
        else:
            why = "not a string"
        if parsed is None:
            print(f"{where}: not a package URL: {why}")
            count += 1
        elif parsed.version is not None:
            print(f"{where}: carries a version ({parsed.version}); CVE 5.2 wants none")
            count += 1
    return count


def main(argv):
    if len(argv) != 3 or argv[1] not in ("osv", "cve5"):
        cannot("usage: validate.py osv|cve5 FILE|-")
    try:
        text = sys.stdin.read() if argv[2] == "-" else pathlib.Path(argv[2]).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as e:
        cannot(f"cannot read {argv[2]}: {e}")
    try:
        errors = validate_osv(doc) if argv[1] == "osv" else validate_cve5(doc)
    except ImportError as e:
        cannot(f"{e}: run tests/lib/install-deps.sh")
    except Exception as e:  # noqa: BLE001 - a crash must never read as "invalid" (exit 1)
        cannot(f"validation could not run: {type(e).__name__}: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
