#!/usr/bin/env python3
"""A farm log for `trigwire run`: JOBS jobs x FRAMES frames in submissions of GROUP jobs;
every frame of every job has a callback `complete-work-a-F && complete-work-b-F` on the
two labelled jobs (a, b) of its submission; then every frame completes once, in a seeded
random order. Usage: farm_log.py [JOBS FRAMES GROUP SEED] > log.jsonl"""
import json, random, sys
jobs, frames, group, seed = (int(a) for a in (sys.argv[1:] + ['1000', '100', '10', '1'])[:4])
out = sys.stdout
agenda = [str(f) for f in range(1, frames + 1)]
for s in range(jobs // group):
    sub = []
    for j in range(group):
        job = {"name": f"shot{s:03d}_job{j}", "agenda": agenda,
               "callbacks": [{"triggers": f"complete-work-a-{f} && complete-work-b-{f}", "code": "unblock-work-self"}
                             for f in agenda]}
        if j < 2:
            job["label"] = "ab"[j]
        sub.append(job)
    out.write(json.dumps({"submit": sub}) + "\n")
events = [(job, f) for job in range(1, jobs + 1) for f in agenda]
random.Random(seed).shuffle(events)
for job, f in events:
    out.write('{"event": "complete", "type": "work", "job": %d, "extra": "%s"}\n' % (job, f))
