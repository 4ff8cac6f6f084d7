#!/usr/bin/env python3
"""Drafts an update script: the statements of the current install script (sql/*.sql in the
order src/lib.rs includes them) that differ from a frozen release's install script.

    python3 scripts/draft-update.py sql/pg_collect--0.1.0.sql > draft.sql

A draft, not a release: it lists new and changed functions as CREATE OR REPLACE and every
other new or changed statement as it is, each under a comment saying why. What cannot be
replaced in place (a table's new columns and constraints, a function whose signature or result
changed, a view whose columns changed) needs its own ALTER, DROP or CREATE, written by hand;
the upgrade test in `make test` compares the result with a fresh install, object by object.
"""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def statements(text):
    """Top-level SQL statements, comments dropped, whitespace normalized at the ends."""
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            cur.append("\n")
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "'":
            j = i + 1
            while j < n:
                if text[j] == "'" and text.startswith("''", j):
                    j += 2
                    continue
                if text[j] == "'":
                    break
                j += 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        m = re.match(r"\$[A-Za-z_]*\$", text[i:])
        if m:
            tag = m.group(0)
            j = text.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            cur.append(text[i:j])
            i = j
            continue
        if c == ";":
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    s = "".join(cur).strip()
    if s:
        out.append(s)
    return out


def key(stmt):
    """What a statement defines, for matching across versions: kind and name (with argument
    types for routines), or the statement itself for everything else."""
    m = re.match(r"CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|AGGREGATE)\s+([\w.\"]+)\s*\(", stmt, re.I)
    if m:
        depth, j = 1, m.end()
        while depth and j < len(stmt):
            depth += {"(": 1, ")": -1}.get(stmt[j], 0)
            j += 1
        args = stmt[m.end():j - 1]
        types = []
        for a in re.split(r",(?![^()]*\))", args):
            a = re.sub(r"\bDEFAULT\b.*|=.*", "", a, flags=re.I | re.S).strip()
            a = re.sub(r"^(IN|OUT|INOUT|VARIADIC)\s+", "", a, flags=re.I)
            words = a.split()
            if len(words) > 1 and not words[0].lower().startswith(("double", "timestamp", "character", "bit")):
                a = " ".join(words[1:])
            types.append(a.lower())
        return (m.group(2).upper(), m.group(3), tuple(types))
    m = re.match(r"CREATE\s+(OR\s+REPLACE\s+)?(VIEW|TABLE|TYPE|OPERATOR|CAST|POLICY)\s+([\w.\"]+)", stmt, re.I)
    if m:
        return (m.group(2).upper(), m.group(3))
    return ("STATEMENT", " ".join(stmt.split()))


def normal(stmt):
    return " ".join(stmt.split())


def current_script():
    lib = (REPO / "src/lib.rs").read_text()
    files = re.findall(r'extension_sql_file!\(\s*"\.\./(sql/[\w.]+)"', lib)
    return "\n".join((REPO / f).read_text() for f in files)


def main():
    old = {key(s): normal(s) for s in statements(Path(sys.argv[1]).read_text())}
    for stmt in statements(current_script()):
        k = key(stmt)
        if old.get(k) == normal(stmt):
            continue
        why = "new" if k not in old else "changed"
        if k[0] in ("FUNCTION", "PROCEDURE", "AGGREGATE"):
            stmt = re.sub(r"^CREATE\s+(OR\s+REPLACE\s+)?", "CREATE OR REPLACE ", stmt, flags=re.I)
        print(f"-- {why}: {k[0].lower()} {' '.join(map(str, k[1:]))[:100]}")
        print(stmt + ";\n")


if __name__ == "__main__":
    main()
