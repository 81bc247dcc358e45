// The shape of the compact service tables generated from AWS's service models (botocore JSON) by
// generate.ts: each operation's wire binding and every input/output shape's members and
// constraints, without the documentation. Wire layers, tests and tools read these tables instead of
// hand-copied constants, so a regenerated model changes them all at once.

export type ShapeType =
  | 'structure'
  | 'list'
  | 'map'
  | 'string'
  | 'integer'
  | 'long'
  | 'float'
  | 'double'
  | 'boolean'
  | 'timestamp'
  | 'blob';

export interface MemberRef {
  shape: string;
  /** Where a restJson/Query member travels; absent = the body. */
  location?: 'uri' | 'querystring' | 'header' | 'headers' | 'statusCode';
  locationName?: string;
  idempotencyToken?: boolean;
  jsonvalue?: boolean;
  timestampFormat?: string;
  xmlNamespace?: unknown;
  flattened?: boolean;
}

export interface Shape {
  type: ShapeType;
  members?: Record<string, MemberRef>;
  required?: string[];
  /** list member / map key and value */
  member?: MemberRef;
  key?: MemberRef;
  value?: MemberRef;
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  /** restJson: the member that is the whole HTTP body. */
  payload?: string;
  timestampFormat?: string;
  flattened?: boolean;
  streaming?: boolean;
  eventstream?: boolean;
  event?: boolean;
  exception?: boolean;
  fault?: boolean;
  error?: { code?: string; httpStatusCode?: number; senderFault?: boolean };
  sensitive?: boolean;
  box?: boolean;
}

export interface OperationModel {
  name: string;
  http: { method: string; requestUri: string; responseCode?: number };
  input?: MemberRef;
  output?: MemberRef;
  errors?: string[];
  /** AWS accepts the operation without a signature (the model's `smithy.api#noAuth`). */
  unsigned?: boolean;
}

export interface ServiceModel {
  metadata: {
    apiVersion: string;
    endpointPrefix: string;
    signingName?: string;
    protocol: 'json' | 'rest-json' | 'query' | 'rest-xml' | 'ec2';
    jsonVersion?: string;
    targetPrefix?: string;
    xmlNamespace?: string;
    serviceId: string;
  };
  operations: Record<string, OperationModel>;
  shapes: Record<string, Shape>;
}
