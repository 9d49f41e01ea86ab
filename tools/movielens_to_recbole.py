#!/usr/bin/env python3
"""Converts an unpacked MovieLens release (ml-1m or ml-20m) to RecBole atomic files.

    python3 tools/movielens_to_recbole.py ml-1m  <unpacked ml-1m dir>  <destination>
    python3 tools/movielens_to_recbole.py ml-20m <unpacked ml-20m dir> <destination>

Writes <destination>/<name>.inter (`user_id:token item_id:token rating:float timestamp:float`) and
<destination>/<name>.item (`item_id:token movie_title:token_seq release_year:token class:token_seq`),
tab-separated like ../shared/data/ml-100k. Genres become space-separated `class` tokens (spaces
inside a genre become underscores; "(no genres listed)" becomes no token). Rows that do not parse
stop the conversion with the file and line named; nothing is written until both files convert.
"""
import csv
import io
import os
import re
import sys

YEAR = re.compile(r"\((\d{4})\)\s*$")


def fail(path, line, why):
    sys.exit(f"{path}:{line}: {why}")


def genres(field):
    out = []
    for g in field.split("|"):
        g = g.strip()
        if g and g != "(no genres listed)":
            out.append(g.replace(" ", "_"))
    return " ".join(out)


def title_year(title):
    m = YEAR.search(title)
    return (title[: m.start()].strip(), m.group(1)) if m else (title.strip(), "")


def clean(text):
    return text.replace("\t", " ").replace("\n", " ")


def dat_rows(path, layout):
    """The rows of an ML-1M `::`-separated file, each with the fields `layout` names."""
    fields = layout.count("::") + 1
    with open(path, encoding="latin-1") as f:
        for n, row in enumerate(f, 1):
            parts = row.rstrip("\n").split("::")
            if len(parts) != fields:
                fail(path, n, f"expected {layout}, got {row.strip()!r}")
            yield parts


def ml1m(src):
    ratings = list(dat_rows(os.path.join(src, "ratings.dat"), "UserID::MovieID::Rating::Timestamp"))
    items = []
    for movie, title_field, genre_field in dat_rows(os.path.join(src, "movies.dat"), "MovieID::Title::Genres"):
        title, year = title_year(title_field)
        items.append((movie, clean(title), year, genres(genre_field)))
    return ratings, items


def ml20m(src):
    ratings, items = [], []
    path = os.path.join(src, "ratings.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["userId", "movieId", "rating", "timestamp"]:
            fail(path, 1, f"unexpected header {header}")
        for n, row in enumerate(reader, 2):
            if len(row) != 4:
                fail(path, n, f"expected 4 fields, got {len(row)}")
            ratings.append(row)
    path = os.path.join(src, "movies.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["movieId", "title", "genres"]:
            fail(path, 1, f"unexpected header {header}")
        for n, row in enumerate(reader, 2):
            if len(row) != 3:
                fail(path, n, f"expected 3 fields, got {len(row)}")
            title, year = title_year(row[1])
            items.append((row[0], clean(title), year, genres(row[2])))
    return ratings, items


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("ml-1m", "ml-20m"):
        sys.exit(__doc__)
    name, src, dest = sys.argv[1:]
    ratings, items = (ml1m if name == "ml-1m" else ml20m)(src)
    for r in ratings:
        for field, value in zip(("user", "item", "rating", "timestamp"), r):
            try:
                float(value)
            except ValueError:
                sys.exit(f"{name}: {field} {value!r} is not a number")
    inter, item = io.StringIO(), io.StringIO()
    inter.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
    for u, i, r, t in ratings:
        inter.write(f"{u}\t{i}\t{r}\t{t}\n")
    item.write("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n")
    for row in items:
        item.write("\t".join(row) + "\n")
    os.makedirs(dest, exist_ok=True)
    for suffix, buf in ((".inter", inter), (".item", item)):
        path = os.path.join(dest, name + suffix)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(buf.getvalue())
        os.replace(path + ".tmp", path)
        print(f"wrote {path}", file=sys.stderr)
    print(f"{name}: {len(ratings)} ratings, {len({r[0] for r in ratings})} users, {len(items)} movies", file=sys.stderr)


if __name__ == "__main__":
    main()
