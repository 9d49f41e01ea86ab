#!/usr/bin/env bash
# Downloads a larger MovieLens release from GroupLens and writes it in the RecBole atomic format that
# `arbor tdm --inter ... --items ...` and `arbor train --inter ...` read (the format of
# ../shared/data/ml-100k): <dest>/<name>.inter (user, item, rating, timestamp) and <dest>/<name>.item
# (item, title, year, genres; the genres are the categories of TDM's initial tree).
#
#   tools/fetch-movielens.sh ml-1m  /data/movielens     # 1M ratings, 6,040 users, 3,706 movies
#   tools/fetch-movielens.sh ml-20m /data/movielens     # 20M ratings, 138,493 users (TDM's MovieLens)
#   arbor tdm --inter /data/movielens/ml-1m.inter --items /data/movielens/ml-1m.item --out /tmp/tdm-ml1m
#
# MovieLens terms: research use, no redistribution; cite Harper & Konstan (2015). Needs curl, unzip
# and python3. Nothing is written into the repository.
set -euo pipefail

usage() { echo "usage: $0 ml-1m|ml-20m <destination directory>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
name=$1
dest=$2
case "$name" in
    ml-1m|ml-20m) ;;
    *) usage ;;
esac
for tool in curl unzip python3; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done

mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
url="https://files.grouplens.org/datasets/movielens/$name.zip"
echo "fetching $url" >&2
curl --fail --location --show-error --output "$work/$name.zip" "$url"
unzip -q "$work/$name.zip" -d "$work"
python3 "$(dirname "$0")/movielens_to_recbole.py" "$name" "$work/$name" "$dest"
