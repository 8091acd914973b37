"""Include/exclude rules: one regular expression per list, as fnmatchcase would decide."""

import random
from fnmatch import fnmatchcase

from streamcount.discovery import Rules

INCLUDE = ("*.txt", "data-[0-9]*.csv", "??.md")
EXCLUDE = (".*", "*.tmp", "*.part", "*.swp", "*~", "[!a-z]*")


def test_rules_decide_as_fnmatchcase_on_any_name():
    rng = random.Random(7)
    alphabet = "ab.-_~tx[]*?1\n中文"
    suffixes = ("", ".txt", ".tmp", "~", ".md", ".csv")
    names = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) + rng.choice(suffixes)
        for _ in range(20_000)
    ] + ["a.txt", "data-1.csv", "ab.md", ".x.txt", "b.part", "Z.txt", "\n.txt", "a.TXT"]
    rules = Rules(INCLUDE, EXCLUDE)
    for name in names:
        assert rules.included(name) == any(fnmatchcase(name, g) for g in INCLUDE), name
        assert rules.excluded(name) == any(fnmatchcase(name, g) for g in EXCLUDE), name


def test_empty_lists_match_nothing_and_rules_compare_by_their_globs():
    assert not Rules((), ()).included("a.txt") and not Rules((), ()).excluded(".x")
    assert Rules(INCLUDE, EXCLUDE) == Rules(INCLUDE, EXCLUDE)
    assert Rules(INCLUDE, EXCLUDE) != Rules(INCLUDE, ())


def test_wanted_takes_the_parts_below_the_root_as_pathlib_would():
    from pathlib import Path, PurePath

    rules = Rules(include=("*.txt",), exclude=(".*", "tmp"))

    def by_pathlib(path: str, root: Path) -> bool:
        try:
            parts = PurePath(path).relative_to(root).parts
        except ValueError:
            return False
        if not parts or any(rules.excluded(p) for p in parts):
            return False
        return rules.included(parts[-1])

    cases = [
        ("/in/a.txt", "/in"), ("/in/sub/a.txt", "/in"), ("/in/.hidden/a.txt", "/in"),
        ("/in/tmp/a.txt", "/in"), ("/in/a.txt.part", "/in"), ("/in", "/in"),
        ("/inbox/a.txt", "/in"), ("/other/a.txt", "/in"), ("/a.txt", "/"),
        ("/in//sub/a.txt", "/in"), ("/in/./a.txt", "/in"), ("/.x/in/a.txt", "/.x/in"),
        ("/in/tmp", "/in"), ("/in/sub/.a.txt", "/in"),
    ]  # fmt: skip
    for path, root in cases:
        assert rules.wanted(path, Path(root)) == by_pathlib(path, Path(root)), (path, root)
