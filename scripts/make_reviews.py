"""Write src/epochscope/data/reviews.tsv, the text demo's dataset (run from the repo root).

3,000 short synthetic reviews of phones, restaurants, hotels and films, written for epochscope
by this fixed grammar (seed 0) and dedicated to the public domain (CC0 1.0). Each review has
one or two clauses; a clause praises or criticises one aspect ("the battery is great", "the
plot was not very good"; "not" only negates praise, as people use it). The label says which:
``positive`` (every clause praises), ``negative`` (every clause criticises), ``mixed`` (both).
Words alone do not decide it: "not" flips a clause, and a mixed review needs one clause of
each polarity, which the model must read per clause.
"""

from __future__ import annotations

import random
from pathlib import Path

ASPECTS = {
    "phone": ["battery", "screen", "camera", "speaker", "charger", "keyboard"],
    "restaurant": ["food", "service", "soup", "dessert", "coffee", "menu"],
    "hotel": ["room", "bed", "staff", "breakfast", "view", "shower"],
    "film": ["plot", "acting", "ending", "music", "dialogue", "cast"],
}
GOOD = ["great", "excellent", "lovely", "superb", "wonderful", "solid", "pleasant", "good", "fantastic", "nice"]
BAD = ["awful", "terrible", "poor", "dull", "disappointing", "bad", "weak", "horrible", "mediocre", "annoying"]
INTENSIFIERS = ["", "", "really ", "very ", "quite ", "truly "]
OPENERS = ["", "", "", "honestly, ", "overall ", "well, ", "to be fair, ", "i think "]
ENDINGS = ["", "", "", " overall", " to be honest", " this time", "!"]
CLASSES = ("negative", "mixed", "positive")


def clause(rng: random.Random, aspect: str, good: bool) -> str:
    verb = rng.choice(["is", "was", "seemed", "felt"])
    if good:
        return f"the {aspect} {verb} {rng.choice(INTENSIFIERS)}{rng.choice(GOOD)}"
    if rng.random() < 0.35:  # criticism by negated praise
        return f"the {aspect} {verb} not {rng.choice(['', '', 'very ', 'really '])}{rng.choice(GOOD)}"
    return f"the {aspect} {verb} {rng.choice(INTENSIFIERS)}{rng.choice(BAD)}"


def review(rng: random.Random, label: str) -> str:
    aspects = rng.sample(ASPECTS[rng.choice(list(ASPECTS))], 2)
    if label == "mixed":
        first = rng.random() < 0.5
        parts = [clause(rng, aspects[0], first), clause(rng, aspects[1], not first)]
        joint = rng.choice([" but ", " but ", " and ", ", while ", ". "])
    else:
        good = label == "positive"
        if rng.random() < 0.4:
            return rng.choice(OPENERS) + clause(rng, aspects[0], good) + rng.choice(ENDINGS)
        parts = [clause(rng, aspects[0], good), clause(rng, aspects[1], good)]
        joint = rng.choice([" and ", " and ", ", and ", ". ", " and also "])
    return rng.choice(OPENERS) + parts[0] + joint + parts[1] + rng.choice(ENDINGS)


def main(n_per_class: int = 1000, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows, seen = [], set()
    for label in CLASSES:
        count = 0
        while count < n_per_class:
            text = review(rng, label)
            if text not in seen:
                seen.add(text)
                rows.append((label, text))
                count += 1
    rng.shuffle(rows)
    out = Path("src/epochscope/data/reviews.tsv")
    header = ("# 3,000 synthetic short reviews written for epochscope by scripts/make_reviews.py (seed 0).\n"
              "# Licence: CC0 1.0 Universal (public domain dedication), "
              "https://creativecommons.org/publicdomain/zero/1.0/\n"
              "# Columns: label (negative, mixed, positive), text. Tab-separated, UTF-8.\n")
    out.write_text(header + "".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    print(f"wrote {len(rows)} reviews to {out}")


if __name__ == "__main__":
    main()
