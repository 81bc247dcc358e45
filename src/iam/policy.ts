// IAM policy documents: parsing with clear errors (MalformedPolicyDocument), and evaluation as AWS
// documents it for identity policies — an explicit Deny wins, then an Allow, otherwise the
// implicit deny — and for the resource-based policies of the same account (evaluateResourcePolicy).
// Supports Action/NotAction, Resource/NotResource with `*` and `?` wildcards
// (actions case-insensitive, resources case-sensitive), Principal for trust policies, and the
// string, ARN, boolean and numeric condition operators (with IfExists, ForAnyValue/ForAllValues),
// and policy variables (`${aws:username}`, `${cognito-identity.amazonaws.com:sub}`, ...) in
// resources and condition values of Version 2012-10-17 policies, filled from the request context.

import { nestingExceeds, nestingMessage } from '../nesting.js';

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string[];
  NotAction?: string[];
  Resource?: string[];
  NotResource?: string[];
  Principal?: '*' | Record<string, string[]>;
  Condition?: Record<string, Record<string, string[]>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: Statement[];
}

export type ConditionContext = Record<string, string | string[] | undefined>;

export interface RequestContext {
  action: string;
  resource: string;
  /** For trust policies: the principal asking to assume the role. */
  principal?: { type: 'Service' | 'AWS' | 'Federated'; id: string | readonly string[] };
  context?: ConditionContext;
}

export type Decision = 'Allow' | 'ExplicitDeny' | 'ImplicitDeny';

export class PolicyError extends Error {}

const list = (v: unknown, field: string): string[] => {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  throw new PolicyError(`${field} must be a string or a list of strings`);
};

// An action without its service prefix ("PutEvents") or a resource that is no ARN ("my-stream")
// would match nothing and deny silently; AWS rejects both, and so do we, saying which.
const actions = (v: unknown, field: string): string[] => {
  const out = list(v, field);
  for (const a of out) {
    if (a !== '*' && !/^[A-Za-z0-9-]+:[^:]*$/.test(a)) throw new PolicyError(`${field}: action "${a}" must be prefixed by its service, e.g. "mobiletargeting:PutEvents"`);
  }
  return out;
};
const resources = (v: unknown, field: string): string[] => {
  const out = list(v, field);
  for (const r of out) if (r !== '*' && !r.startsWith('arn:')) throw new PolicyError(`${field}: resource "${r}" must be in ARN format or "*"`);
  return out;
};

export type PolicyKind = 'identity' | 'trust' | 'resource';

/** Parses and checks a policy document (JSON text or object). */
export function parsePolicy(doc: string | object, kind: PolicyKind = 'identity'): PolicyDocument {
  let raw: unknown;
  try {
    raw = typeof doc === 'string' ? JSON.parse(doc) : doc;
  } catch (e) {
    throw new PolicyError(`Syntax errors in policy: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PolicyError('Policy document must be a JSON object');
  if (nestingExceeds(raw)) throw new PolicyError(nestingMessage('Policy document'));
  const r = raw as Record<string, unknown>;
  if (r.Version !== undefined && r.Version !== '2012-10-17' && r.Version !== '2008-10-17') {
    throw new PolicyError(`The policy Version "${String(r.Version)}" is not supported; use "2012-10-17"`);
  }
  if (r.Statement === undefined) throw new PolicyError('Policy document must contain a Statement');
  const statements = Array.isArray(r.Statement) ? r.Statement : [r.Statement];
  return {
    Version: r.Version as string | undefined,
    Statement: statements.map((s, i) => parseStatement(s, `Statement[${i}]`, kind)),
  };
}

function parseStatement(s: unknown, f: string, kind: PolicyKind): Statement {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new PolicyError(`${f} must be an object`);
  const r = s as Record<string, unknown>;
  if (r.Effect !== 'Allow' && r.Effect !== 'Deny') throw new PolicyError(`${f}.Effect must be "Allow" or "Deny"`);
  const out: Statement = { Effect: r.Effect };
  if (typeof r.Sid === 'string') out.Sid = r.Sid;
  if ((r.Action === undefined) === (r.NotAction === undefined)) throw new PolicyError(`${f} must have exactly one of Action or NotAction`);
  if (r.Action !== undefined) out.Action = actions(r.Action, `${f}.Action`);
  if (r.NotAction !== undefined) out.NotAction = actions(r.NotAction, `${f}.NotAction`);
  if (kind !== 'trust' && (r.Resource === undefined) === (r.NotResource === undefined)) {
    throw new PolicyError(`${f} must have exactly one of Resource or NotResource`);
  }
  if (kind === 'identity') {
    if (r.Principal !== undefined) throw new PolicyError(`${f}: Principal is not allowed in an identity policy`);
  } else if (r.Principal === undefined) {
    throw new PolicyError(`${f}: a ${kind === 'trust' ? 'trust' : 'resource-based'} policy statement needs a Principal`);
  }
  if (r.Resource !== undefined) out.Resource = resources(r.Resource, `${f}.Resource`);
  if (r.NotResource !== undefined) out.NotResource = resources(r.NotResource, `${f}.NotResource`);
  if (r.Principal !== undefined) {
    if (r.Principal === '*') out.Principal = '*';
    else if (typeof r.Principal === 'object' && r.Principal !== null && !Array.isArray(r.Principal)) {
      out.Principal = Object.create(null) as Record<string, string[]>;
      for (const [k, v] of Object.entries(r.Principal)) out.Principal[k] = list(v, `${f}.Principal.${k}`);
    } else throw new PolicyError(`${f}.Principal must be "*" or an object`);
  }
  if (r.Condition !== undefined) {
    if (typeof r.Condition !== 'object' || r.Condition === null || Array.isArray(r.Condition)) throw new PolicyError(`${f}.Condition must be an object`);
    // Null prototypes: a key such as `__proto__` stays a key instead of being dropped.
    out.Condition = Object.create(null) as Record<string, Record<string, string[]>>;
    for (const [op, block] of Object.entries(r.Condition)) {
      if (!conditionOperator(op)) throw new PolicyError(`${f}.Condition: unknown operator ${op}`);
      if (typeof block !== 'object' || block === null || Array.isArray(block)) throw new PolicyError(`${f}.Condition.${op} must be an object`);
      out.Condition[op] = Object.create(null) as Record<string, string[]>;
      for (const [key, v] of Object.entries(block)) {
        out.Condition[op][key] = (Array.isArray(v) ? v : [v]).map((x) => conditionValue(x, `${f}.Condition.${op}.${key}`));
      }
    }
  }
  return out;
}

/** A condition value is a string, number or boolean (IAM's JSON grammar); anything else is malformed. */
function conditionValue(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new PolicyError(`${field}: condition values must be strings, numbers or booleans`);
}

/** Evaluates identity policies for one request (AWS's evaluation logic, single account). */
export function evaluate(policies: PolicyDocument[], req: RequestContext): Decision {
  let allowed = false;
  for (const p of policies) {
    // AWS: policy variables exist only in Version 2012-10-17; elsewhere `${...}` is literal text.
    const vars = p.Version === '2012-10-17' ? (req.context ?? {}) : undefined;
    for (const s of p.Statement) {
      if (!statementApplies(s, req, vars)) continue;
      if (s.Effect === 'Deny') return 'ExplicitDeny';
      allowed = true;
    }
  }
  return allowed ? 'Allow' : 'ImplicitDeny';
}

/**
 * Evaluates a resource-based policy for a caller of the resource's own account, named by its ARNs
 * (a user's ARN; a role session's ARN and its role's). A statement naming one of them (or `*`)
 * applies to the caller. One naming the account itself (`123456789012`, `arn:aws:iam::…:root`)
 * only delegates to the account's identity policies, so it grants nothing by itself, but its Deny
 * still denies everyone in the account.
 */
export function evaluateResourcePolicy(policy: PolicyDocument, req: Omit<RequestContext, 'principal'>, callers: string[], accountId: string): Decision {
  const account = new Set([accountId, `arn:aws:iam::${accountId}:root`]);
  let allowed = false;
  const vars = policy.Version === '2012-10-17' ? (req.context ?? {}) : undefined;
  for (const s of policy.Statement) {
    if (!statementApplies({ ...s, Principal: undefined }, req, vars)) continue;
    const ids = s.Principal === '*' ? ['*'] : (s.Principal?.AWS ?? []);
    const names = ids.some((id) => id === '*' || callers.some((c) => wildcardMatch(id, c, false)));
    const delegates = ids.some((id) => account.has(id));
    if (s.Effect === 'Deny' && (names || delegates)) return 'ExplicitDeny';
    if (s.Effect === 'Allow' && names) allowed = true;
  }
  return allowed ? 'Allow' : 'ImplicitDeny';
}

function statementApplies(s: Statement, req: RequestContext, vars: ConditionContext | undefined): boolean {
  if (s.Action && !s.Action.some((a) => wildcardMatch(a, req.action, true))) return false;
  if (s.NotAction && s.NotAction.some((a) => wildcardMatch(a, req.action, true))) return false;
  const resource = (r: string) => {
    const pattern = vars ? substitute(r, vars) : r;
    return pattern !== undefined && resourceMatch(pattern, req.resource);
  };
  if (s.Resource && !s.Resource.some(resource)) return false;
  // A NotResource whose variable has no value excludes nothing.
  if (s.NotResource && s.NotResource.some(resource)) return false;
  if (s.Principal !== undefined && !principalMatch(s.Principal, req.principal)) return false;
  if (s.Condition && !conditionsHold(s.Condition, req.context ?? {}, vars)) return false;
  return true;
}

/** Characters a `${...}` escape stands for. */
const VARIABLE_ESCAPES: ReadonlyMap<string, string> = new Map([['*', '*'], ['?', '?'], ['$', '$']]);

/**
 * Fills `${key}` from the request context (keys case-insensitive, as condition keys). Undefined when
 * a variable has no single value: AWS then treats the resource or condition value as not matching.
 * A value holding a wildcard character is no value either, so a claim such as a `sub` of `*`
 * cannot widen a resource pattern.
 */
export function substitute(text: string, ctx: ConditionContext): string | undefined {
  if (!text.includes('${')) return text;
  let missing = false;
  const out = text.replace(/\$\{([^}]*)\}/g, (_all, key: string) => {
    const escape = VARIABLE_ESCAPES.get(key);
    if (escape !== undefined) return escape;
    const v = lookup(ctx, key);
    if (typeof v !== 'string' || v.includes('*') || v.includes('?')) {
      missing = true;
      return '';
    }
    return v;
  });
  return missing ? undefined : out;
}

function principalMatch(p: Statement['Principal'], who: RequestContext['principal']): boolean {
  if (p === '*') return true;
  if (!who || !p) return false;
  const ids = p[who.type];
  // A caller may be named several ways (its ARN, its role's ARN, its account): any one matches.
  const names = typeof who.id === 'string' ? [who.id] : who.id;
  return !!ids && ids.some((id) => id === '*' || names.some((n) => wildcardMatch(id, n, false)));
}

/** ARNs match part by part (so `*` in a part does not cross a `:`), other strings whole. */
function resourceMatch(pattern: string, resource: string): boolean {
  if (pattern === '*') return true;
  return wildcardMatch(pattern, resource, false);
}

function arnMatch(pattern: string, arn: string): boolean {
  const p = pattern.split(':');
  const a = arn.split(':');
  if (p.length < 6 || a.length < 6) return false;
  const pHead = p.slice(0, 5);
  const aHead = a.slice(0, 5);
  return pHead.every((x, i) => wildcardMatch(x, aHead[i], false)) && wildcardMatch(p.slice(5).join(':'), a.slice(5).join(':'), false);
}

const patternCache = new Map<string, RegExp>();

/** `*` matches any run of characters, `?` any single one. */
export function wildcardMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) {
    return ignoreCase ? pattern.toLowerCase() === value.toLowerCase() : pattern === value;
  }
  const key = (ignoreCase ? 'i' : 's') + pattern;
  let re = patternCache.get(key);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
    if (patternCache.size > 10_000) patternCache.clear();
    patternCache.set(key, re);
  }
  return re.test(value);
}

type Comparator = (policyValue: string, actual: string) => boolean;

/** Operator names come from policy documents: a Map, so `constructor` is no operator. */
const COMPARATORS: ReadonlyMap<string, { cmp: Comparator; negated: boolean }> = new Map(Object.entries({
  StringEquals: { cmp: (p, a) => p === a, negated: false },
  StringNotEquals: { cmp: (p, a) => p === a, negated: true },
  StringEqualsIgnoreCase: { cmp: (p, a) => p.toLowerCase() === a.toLowerCase(), negated: false },
  StringNotEqualsIgnoreCase: { cmp: (p, a) => p.toLowerCase() === a.toLowerCase(), negated: true },
  StringLike: { cmp: (p, a) => wildcardMatch(p, a, false), negated: false },
  StringNotLike: { cmp: (p, a) => wildcardMatch(p, a, false), negated: true },
  ArnEquals: { cmp: (p, a) => arnMatch(p, a), negated: false },
  ArnLike: { cmp: (p, a) => arnMatch(p, a), negated: false },
  ArnNotEquals: { cmp: (p, a) => arnMatch(p, a), negated: true },
  ArnNotLike: { cmp: (p, a) => arnMatch(p, a), negated: true },
  Bool: { cmp: (p, a) => p.toLowerCase() === a.toLowerCase(), negated: false },
  NumericEquals: { cmp: (p, a) => Number(a) === Number(p), negated: false },
  NumericNotEquals: { cmp: (p, a) => Number(a) === Number(p), negated: true },
  NumericLessThan: { cmp: (p, a) => Number(a) < Number(p), negated: false },
  NumericLessThanEquals: { cmp: (p, a) => Number(a) <= Number(p), negated: false },
  NumericGreaterThan: { cmp: (p, a) => Number(a) > Number(p), negated: false },
  NumericGreaterThanEquals: { cmp: (p, a) => Number(a) >= Number(p), negated: false },
}));

function conditionOperator(op: string): { base: string; ifExists: boolean; set?: 'ForAnyValue' | 'ForAllValues' } | undefined {
  let rest = op;
  let set: 'ForAnyValue' | 'ForAllValues' | undefined;
  const m = /^(ForAnyValue|ForAllValues):(.+)$/.exec(rest);
  if (m) {
    set = m[1] as 'ForAnyValue' | 'ForAllValues';
    rest = m[2];
  }
  const ifExists = rest.endsWith('IfExists');
  const base = ifExists ? rest.slice(0, -'IfExists'.length) : rest;
  if (base === 'Null') return { base, ifExists: false, set };
  return COMPARATORS.has(base) ? { base, ifExists, set } : undefined;
}

/** Every operator block must hold; within a block every key; within a key any value (OR). */
function conditionsHold(cond: NonNullable<Statement['Condition']>, ctx: ConditionContext, vars: ConditionContext | undefined): boolean {
  for (const [op, block] of Object.entries(cond)) {
    const o = conditionOperator(op)!;
    for (const [key, written] of Object.entries(block)) {
      // A value whose variable has no value matches nothing.
      const values = vars ? written.map((v) => substitute(v, vars)).filter((v): v is string => v !== undefined) : written;
      const actual = lookup(ctx, key);
      if (o.base === 'Null') {
        const wantNull = values[0]?.toLowerCase() === 'true';
        if ((actual === undefined) !== wantNull) return false;
        continue;
      }
      const { cmp, negated } = COMPARATORS.get(o.base)!;
      if (actual === undefined) {
        if (o.ifExists || negated || o.set === 'ForAllValues') continue;
        return false;
      }
      const actuals = Array.isArray(actual) ? actual : [actual];
      const one = (a: string) => {
        const hit = values.some((v) => cmp(v, a));
        return negated ? !hit : hit;
      };
      const ok = o.set === 'ForAllValues' ? actuals.every(one) : actuals.some(one);
      if (!ok) return false;
    }
  }
  return true;
}

/** Condition keys are case-insensitive. */
function lookup(ctx: ConditionContext, key: string): string | string[] | undefined {
  if (Object.hasOwn(ctx, key)) return ctx[key];
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(ctx)) if (k.toLowerCase() === lower) return v;
  return undefined;
}
