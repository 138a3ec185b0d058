#!/bin/bash
# juju-log for the runner's hooks, in bash rather than hooktool.py: charms.reactive calls it for
# every handler and flag it handles (about 100 times in an update-status hook), and a Python
# start per call made each hook seconds slower. It only appends a line to the unit's log
# ($LOCALJUJU_LOG, set by the runner), in the format hooktool's callers read.
level=INFO
while [ $# -gt 0 ]; do
    case $1 in
        -l|--log-level) level=$2; shift 2 ;;
        --log-level=*) level=${1#*=}; shift ;;
        --debug) level=DEBUG; shift ;;
        --format) shift 2 ;;
        --format=*) shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    echo 'ERROR no message specified' >&2
    exit 2
fi
# bash builtins only (no date, no tr, no subshell): each process a call starts costs as much
# as the rest of it.
printf -v now '%(%Y-%m-%d %H:%M:%S)T' -1
printf '%s %s juju-log: %s%s\n' "$now" "${level^^}" \
    "${JUJU_RELATION_ID:+$JUJU_RELATION_ID: }" "$*" >> "$LOCALJUJU_LOG"
