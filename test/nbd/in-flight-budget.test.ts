/**
 * The server-wide budget's fairness rule, without sockets: a connection holding nothing is
 * always admitted; otherwise it may hold up to maxBytes / holders; what one connection holds
 * never keeps another under its share waiting; refused connections are woken when they give
 * bytes back or when a holder leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InFlightBudget } from '../../src/nbd/in-flight-budget.js';

test('shares: the whole budget alone, maxBytes / holders with others, one request always', () => {
  const b = new InFlightBudget(24);
  const wakes = { a: 0, c: 0 };
  const a = b.open(() => wakes.a++);
  const c = b.open(() => wakes.c++);
  assert.ok(a.admits(100), 'a connection holding nothing takes even an oversized request');
  a.take(8);
  a.take(8);
  assert.ok(a.admits(8));
  a.take(8);
  assert.ok(!a.admits(1), 'alone, the budget is the share');
  // a holds everything and reads nothing: c is admitted all the same, up to its own share.
  assert.ok(c.admits(4));
  c.take(4);
  assert.equal(b.holderCount, 2);
  assert.ok(c.admits(8), 'c is under its share of 12');
  assert.ok(!c.admits(9));
  c.take(8);
  a.waitForRoom();
  c.waitForRoom();
  // c leaving the holders grows a's share back: a is woken, c (who gave) too.
  c.give(12);
  assert.deepEqual(wakes, { a: 1, c: 1 });
  assert.equal(b.holderCount, 1);
  // a is still at its share; giving back wakes it again once it waits.
  a.waitForRoom();
  a.give(8);
  assert.equal(wakes.a, 2);
  assert.ok(a.admits(8));
  a.close();
  a.give(16);
  assert.equal(wakes.a, 2, 'no wake-ups after close');
  assert.equal(b.holderCount, 0);
  assert.throws(() => new InFlightBudget(0), RangeError);
});
