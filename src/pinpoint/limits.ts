// Pinpoint's documented quotas (reference/pinpoint.md §2), one named constant each. Every one is
// enforced with a 400 (or 413) whose message names the field and the limit, and has a test.

// PutEvents (§2.1)
export const MAX_EVENTS_PER_REQUEST = 100;
export const MAX_PUT_EVENTS_REQUEST_BYTES = 4 * 1024 * 1024;
export const MAX_EVENT_BYTES = 1000 * 1024;
export const MAX_EVENT_ATTRIBUTES_AND_METRICS = 40;
export const MAX_EVENT_ATTRIBUTE_KEY_LENGTH = 50;
export const MAX_EVENT_ATTRIBUTE_VALUE_LENGTH = 200;

// Endpoints (§2.2)
export const MAX_ENDPOINT_BYTES = 15 * 1024;
export const MAX_ATTRIBUTE_NAMES_PER_APP = 250;
export const MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH = 50;
export const MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH = 100;
export const MAX_ENDPOINT_ATTRIBUTE_VALUES = 50;
export const MAX_ENDPOINTS_PER_BATCH = 100;
export const MAX_ENDPOINT_BATCH_REQUEST_BYTES = 7 * 1024 * 1024;
export const MAX_ENDPOINTS_PER_USER = 15;

// API-wide (§2.3) and tagging (§1.3)
export const MAX_REQUEST_BYTES = 7 * 1024 * 1024;
export const MAX_TAGS_PER_RESOURCE = 50;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;

// GetApps paging: the SDK sends page-size as a string; Pinpoint's console pages by 20.
export const DEFAULT_APPS_PAGE_SIZE = 20;
export const MAX_APPS_PAGE_SIZE = 1000;
