/**
 * The bench scripts' `NAME=VALUE …` options (src/cli/bench/env-assignments.ts), e.g.
 * bench/e2e-compare's --compare-env, which starts a second serve with those variables set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envAssignments } from '../../../src/cli/bench/env-assignments.js';

test('envAssignments reads NAME=VALUE words; a value may be empty or hold another =', () => {
  assert.deepEqual(envAssignments('NBDCRYPT_YOUNG_GC=0  UV_THREADPOOL_SIZE=4', '--x'), { NBDCRYPT_YOUNG_GC: '0', UV_THREADPOOL_SIZE: '4' });
  assert.deepEqual(envAssignments('A= B=c=d', '--x'), { A: '', B: 'c=d' });
  assert.deepEqual(envAssignments(undefined, '--x'), {});
  assert.deepEqual(envAssignments('  ', '--x'), {});
});

test('envAssignments refuses a word that is not NAME=VALUE, naming the option', () => {
  assert.throws(() => envAssignments('NBDCRYPT_YOUNG_GC', '--compare-env'), /--compare-env: 'NBDCRYPT_YOUNG_GC' is not NAME=VALUE/);
  assert.throws(() => envAssignments('=1', '--compare-env'), /is not NAME=VALUE/);
});
