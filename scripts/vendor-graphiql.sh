#!/usr/bin/env bash
# Refreshes assets/graphiql/ (embedded in the binary, served in development on /graphql) from
# the npm registry: GraphiQL 3 (the last with a browser build that needs no bundler) and the
# React 18 it runs on. Run by hand when upgrading; the build itself never downloads anything.
set -euo pipefail
cd "$(dirname "$0")/.."
GRAPHIQL=3.9.0
REACT=18.3.1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$work/$pkg" && tar xzf "$work/$pkg.tgz" -C "$work/$pkg"
done
out=assets/graphiql
mkdir -p "$out"
cp "$work/graphiql-$GRAPHIQL/package/graphiql.min.js" "$work/graphiql-$GRAPHIQL/package/graphiql.min.css" "$out/"
cp "$work/react-$REACT/package/umd/react.production.min.js" "$out/"
cp "$work/react-dom-$REACT/package/umd/react-dom.production.min.js" "$out/"
cp "$work/graphiql-$GRAPHIQL/package/LICENSE" "$out/LICENSE-graphiql"
cp "$work/react-$REACT/package/LICENSE" "$out/LICENSE-react"
echo "assets/graphiql: GraphiQL $GRAPHIQL, React $REACT"
