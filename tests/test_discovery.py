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
