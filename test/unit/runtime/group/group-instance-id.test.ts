/**
 * Static membership settings of a group job: the instance id comes from the option, else
 * CDCFLOW_GROUP_INSTANCE_ID, and is off otherwise (several processes on one host must not share
 * one); a FENCED_INSTANCE_ID anywhere in kafkajs's error chain is recognised as a fence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { groupInstanceIdOf } from '../../../../runtime/group/group-job.ts';
import { GroupInstanceFencedError, isFencedInstance } from '../../../../runtime/group/group-membership.ts';

const saved = process.env['CDCFLOW_GROUP_INSTANCE_ID'];
afterEach(() => {
  if (saved === undefined) delete process.env['CDCFLOW_GROUP_INSTANCE_ID'];
  else process.env['CDCFLOW_GROUP_INSTANCE_ID'] = saved;
});

describe('group instance id', () => {
  it('is off unless set', () => {
    delete process.env['CDCFLOW_GROUP_INSTANCE_ID'];
    expect(groupInstanceIdOf({})).toBeUndefined();
    process.env['CDCFLOW_GROUP_INSTANCE_ID'] = '  ';
    expect(groupInstanceIdOf({})).toBeUndefined();
  });

  it('comes from the option, else the environment; false turns it off', () => {
    process.env['CDCFLOW_GROUP_INSTANCE_ID'] = 'orders-0';
    expect(groupInstanceIdOf({})).toBe('orders-0');
    expect(groupInstanceIdOf({ groupInstanceId: 'mine' })).toBe('mine');
    expect(groupInstanceIdOf({ groupInstanceId: false })).toBeUndefined();
  });
});

describe('fenced instance', () => {
  it('is found in the cause chain and becomes a typed, non-retriable error', () => {
    const protocol = Object.assign(new Error('fenced'), { type: 'FENCED_INSTANCE_ID' });
    expect(isFencedInstance({ name: 'KafkaJSNumberOfRetriesExceeded', cause: protocol })).toBe(true);
    expect(isFencedInstance(Object.assign(new Error('x'), { type: 'UNKNOWN_MEMBER_ID' }))).toBe(false);
    const error = new GroupInstanceFencedError('orders', 'orders-0', protocol);
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(/orders-0.*FENCED_INSTANCE_ID.*CDCFLOW_GROUP_INSTANCE_ID/s);
  });
});
