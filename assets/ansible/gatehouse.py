# Gatehouse's stdout callback for ansible-playbook: one JSON object a line
# on stdout for each host event, so that Gatehouse splits a run serving
# several devices into each device's operation as it happens.
#
# Lines: {"event": "ok"|"changed"|"failed"|"unreachable"|"skipped",
#         "host": NAME, "task": TASK, "text": WHAT IT SAID,
#         "action": THE TASK'S MODULE}
#        {"event": "stats", "host": NAME, "ok": N, "changed": N,
#         "failures": N, "unreachable": N, "skipped": N, "rescued": N,
#         "ignored": N}
#        {"event": "play", "name": PLAY}
#        {"event": "warning", "text": TEXT}
# A task marked no_log says only that its output is hidden.
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = '''
    name: gatehouse
    type: stdout
    short_description: one JSON line per host event, for Gatehouse
    description:
        - Prints each host's task results as JSON lines that Gatehouse routes to that device's operation.
'''

import json
import sys

from ansible.plugins.callback import CallbackBase

# What of a result is shown: its message, output and a diff; never the
# module's arguments (they may hold values the task marked secret).
SHOWN = ('msg', 'skip_reason', 'stdout', 'stderr', 'module_stdout', 'module_stderr')


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'gatehouse'

    def _emit(self, event):
        sys.stdout.write(json.dumps(event, sort_keys=True) + '\n')
        sys.stdout.flush()

    def _text(self, result):
        res = result._result
        if res.get('_ansible_no_log') or res.get('censored'):
            return 'the output of this task is hidden (no_log)'
        parts = []
        for key in SHOWN:
            value = res.get(key)
            if value:
                if not isinstance(value, str):
                    value = json.dumps(value)
                parts.append(value.rstrip('\n'))
        if 'rc' in res and res.get('rc') not in (0, None):
            parts.append('rc=%s' % res.get('rc'))
        diff = res.get('diff')
        if diff and not res.get('_ansible_no_log'):
            try:
                shown = self._get_diff(diff)
            except Exception:
                shown = ''
            if shown:
                parts.append(shown.rstrip('\n'))
        return '\n'.join(parts)

    def _result(self, kind, result):
        item = result._result.get('_ansible_item_label', result._result.get('item'))
        task = result._task.get_name()
        if item is not None and not result._result.get('_ansible_no_log'):
            task = '%s (item=%s)' % (task, item)
        self._emit({
            'event': kind,
            'host': result._host.get_name(),
            'task': task,
            'text': self._text(result),
            'action': result._task.action,
        })

    def v2_playbook_on_play_start(self, play):
        self._emit({'event': 'play', 'name': play.get_name()})

    def v2_runner_on_ok(self, result):
        self._result('changed' if result._result.get('changed') else 'ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('ignored' if ignore_errors else 'failed', result)

    def v2_runner_on_unreachable(self, result):
        self._result('unreachable', result)

    def v2_runner_on_skipped(self, result):
        self._result('skipped', result)

    def v2_runner_item_on_ok(self, result):
        self._result('changed' if result._result.get('changed') else 'ok', result)

    def v2_runner_item_on_failed(self, result):
        self._result('failed', result)

    def v2_runner_item_on_skipped(self, result):
        self._result('skipped', result)

    def v2_on_any(self, *args, **kwargs):
        pass

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            event = {'event': 'stats', 'host': host}
            for key in ('ok', 'changed', 'failures', 'unreachable', 'skipped', 'rescued', 'ignored'):
                event[key] = s.get(key, 0)
            self._emit(event)
