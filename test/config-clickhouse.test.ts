// PINSTREAM_CLICKHOUSE_URL: parsed once by loadConfig into the ClickHouse adapter's connection
// settings (origin, user, password, database), with ConfigErrors that name the variable and never
// echo the password; unset means the embedded DuckDB store.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config/config.js';

test('unset: no ClickHouse (analytics stay in DuckDB)', () => {
  assert.equal(loadConfig({}).clickhouseUrl, undefined);
  assert.equal(loadConfig({ PINSTREAM_CLICKHOUSE_URL: '' }).clickhouseUrl, undefined);
});

test('a URL gives origin, credentials and database; user default and database pinstream when left out', () => {
  assert.deepEqual(loadConfig({ PINSTREAM_CLICKHOUSE_URL: 'http://ch1:8123' }).clickhouseUrl, {
    url: 'http://ch1:8123',
    username: 'default',
    password: '',
    database: 'pinstream',
  });
  assert.deepEqual(loadConfig({ PINSTREAM_CLICKHOUSE_URL: 'https://pin%40stream:s%3Acret@ch.example.com:8443/analytics/' }).clickhouseUrl, {
    url: 'https://ch.example.com:8443',
    username: 'pin@stream',
    password: 's:cret',
    database: 'analytics',
  });
});

test('bad URLs are ConfigErrors naming PINSTREAM_CLICKHOUSE_URL, without the password', () => {
  const bad: Array<[string, RegExp]> = [
    ['not a url', /must be a URL/],
    ['tcp://u:hunter2@ch1:9000/db', /must use http or https/],
    ['http://u:hunter2@ch1:8123/db?x=1', /must not have a query/],
    ['http://u:hunter2@ch1:8123/my-db', /letters, digits and underscores/],
    ['http://u:hunter2@ch1:8123/a/b', /letters, digits and underscores/],
  ];
  for (const [value, re] of bad) {
    assert.throws(
      () => loadConfig({ PINSTREAM_CLICKHOUSE_URL: value }),
      (e: unknown) => e instanceof ConfigError && e.message.includes('PINSTREAM_CLICKHOUSE_URL') && re.test(e.message) && !e.message.includes('hunter2'),
      value,
    );
  }
});
