#!/bin/sh
# The container's start: bring the database schema up to date, then serve. Arguments are passed to
# `optivgi-csms serve` (e.g. `docker run optivgi-csms --site-limit-kw 60`); every setting can also come
# from the environment (OPTIVGI_*, DATABASE_URL). `exec` makes the CSMS the process that receives
# SIGTERM, so `docker stop` shuts it down gracefully.
set -eu
optivgi-csms db upgrade
exec optivgi-csms serve "$@"
