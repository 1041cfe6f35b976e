/**
 * The closed error hierarchy. Each class is named after the AWS `__type` it serializes to, so the
 * AWS SDKs map it to their own exception classes. Anything that is not a KmsError is an internal
 * error: the API edge answers it as KMSInternalException with a generic message and logs the cause
 * with the request id (STYLE.md §7).
 */

export type Fault = 'client' | 'server';

export abstract class KmsError extends Error {
  /** The AWS error code, e.g. `NotFoundException`. */
  abstract readonly type: string;
  /** HTTP status. KMS answers modelled client errors with 400. */
  readonly status: number = 400;
  readonly fault: Fault = 'client';

  constructor(message = '') {
    super(message);
    this.name = new.target.name;
  }
}

function define(type: string, status = 400, fault: Fault = 'client') {
  return class extends KmsError {
    readonly type = type;
    override readonly status = status;
    override readonly fault = fault;
  };
}

// --- CloudTrail modelled exceptions (botocore cloudtrail/2013-11-01, LookupEvents) ---
export class InvalidLookupAttributesException extends define('InvalidLookupAttributesException') {}
export class InvalidTimeRangeException extends define('InvalidTimeRangeException') {}
export class InvalidMaxResultsException extends define('InvalidMaxResultsException') {}
export class InvalidNextTokenException extends define('InvalidNextTokenException') {}
export class InvalidEventCategoryException extends define('InvalidEventCategoryException') {}

// --- KMS modelled exceptions (botocore kms/2014-11-01) ---
export class NotFoundException extends define('NotFoundException') {}
export class DisabledException extends define('DisabledException') {}
export class KMSInvalidStateException extends define('KMSInvalidStateException') {}
export class InvalidCiphertextException extends define('InvalidCiphertextException') {}
export class IncorrectKeyException extends define('IncorrectKeyException') {}
export class InvalidKeyUsageException extends define('InvalidKeyUsageException') {}
export class InvalidArnException extends define('InvalidArnException') {}
export class InvalidAliasNameException extends define('InvalidAliasNameException') {}
export class InvalidMarkerException extends define('InvalidMarkerException') {}
export class InvalidGrantTokenException extends define('InvalidGrantTokenException') {}
export class InvalidGrantIdException extends define('InvalidGrantIdException') {}
export class AlreadyExistsException extends define('AlreadyExistsException') {}
export class MalformedPolicyDocumentException extends define('MalformedPolicyDocumentException') {}
export class TagException extends define('TagException') {}
export class LimitExceededException extends define('LimitExceededException') {}
export class DryRunOperationException extends define('DryRunOperationException') {}
export class UnsupportedOperationException extends define('UnsupportedOperationException') {}
export class ConflictException extends define('ConflictException') {}
export class KeyUnavailableException extends define('KeyUnavailableException', 500, 'server') {}
export class DependencyTimeoutException extends define('DependencyTimeoutException', 503, 'server') {}
export class KMSInternalException extends define('KMSInternalException', 500, 'server') {}
export class IncorrectKeyMaterialException extends define('IncorrectKeyMaterialException') {}
export class ExpiredImportTokenException extends define('ExpiredImportTokenException') {}
export class InvalidImportTokenException extends define('InvalidImportTokenException') {}
export class KMSInvalidSignatureException extends define('KMSInvalidSignatureException') {}
export class KMSInvalidMacException extends define('KMSInvalidMacException') {}
export class NotAuthorizedException extends define('NotAuthorizedException') {}
// custom key stores (AWS_CLOUDHSM)
export class CustomKeyStoreNotFoundException extends define('CustomKeyStoreNotFoundException') {}
export class CustomKeyStoreInvalidStateException extends define('CustomKeyStoreInvalidStateException') {}
export class CustomKeyStoreNameInUseException extends define('CustomKeyStoreNameInUseException') {}
export class CustomKeyStoreHasCMKsException extends define('CustomKeyStoreHasCMKsException') {}
export class CloudHsmClusterNotFoundException extends define('CloudHsmClusterNotFoundException') {}
export class CloudHsmClusterInUseException extends define('CloudHsmClusterInUseException') {}
export class CloudHsmClusterNotActiveException extends define('CloudHsmClusterNotActiveException') {}
export class CloudHsmClusterNotRelatedException extends define('CloudHsmClusterNotRelatedException') {}
export class CloudHsmClusterInvalidConfigurationException extends define('CloudHsmClusterInvalidConfigurationException') {}
export class IncorrectTrustAnchorException extends define('IncorrectTrustAnchorException') {}

// --- Keyhold's own (no AWS counterpart) ---
/** A blob under a key version below the key's minimum decryption version (SetMinimumDecryptionVersion). */
export class KeyVersionRetiredException extends define('KeyVersionRetiredException') {}

// --- Protocol-level errors shared by AWS JSON services ---
export class ValidationException extends define('ValidationException') {}
export class SerializationException extends define('SerializationException') {}
export class UnknownOperationException extends define('UnknownOperationException') {}
export class AccessDeniedException extends define('AccessDeniedException') {}
export class ThrottlingException extends define('ThrottlingException') {}
export class ServiceUnavailableException extends define('ServiceUnavailableException', 503, 'server') {}
export class MissingAuthenticationTokenException extends define('MissingAuthenticationTokenException') {}
export class UnrecognizedClientException extends define('UnrecognizedClientException') {}
export class InvalidSignatureException extends define('InvalidSignatureException') {}
export class IncompleteSignatureException extends define('IncompleteSignatureException') {}
export class ExpiredTokenException extends define('ExpiredTokenException') {}
// --- IAM and STS (query protocol) modelled errors; the codes are what AWS sends in <Code> ---
export class NoSuchEntityException extends define('NoSuchEntity', 404) {}
export class EntityAlreadyExistsException extends define('EntityAlreadyExists', 409) {}
export class DeleteConflictException extends define('DeleteConflict', 409) {}
export class IamLimitExceededException extends define('LimitExceeded', 409) {}
export class InvalidInputException extends define('InvalidInput') {}
export class IamValidationError extends define('ValidationError') {}
export class IamMalformedPolicyDocumentException extends define('MalformedPolicyDocument') {}
export class IamAccessDeniedException extends define('AccessDenied', 403) {}
export class InvalidActionException extends define('InvalidAction') {}

/** Whole-body limit: AWS documents no `__type`; we answer 413 with ValidationException. */
export class RequestTooLargeException extends define('ValidationException', 413) {}

/** AWS's wording for a single failed member constraint. */
export function validationError(problems: string[]): ValidationException {
  const n = problems.length;
  return new ValidationException(
    `${n} validation error${n === 1 ? '' : 's'} detected: ${problems.join('; ')}`,
  );
}

export function isKmsError(e: unknown): e is KmsError {
  return e instanceof KmsError;
}
