"""Running a selection: the ask/evaluate/tell loop, live evaluation of an agent and
its executors (local threads, Ray), the dollar guard, interruption, progress,
fail-fast on failing agents or graders, and the evaluation store that lets a
re-run reuse what was paid for. The statistics (strategies, stopping rules,
certainty) live one level up and know nothing of this room."""
