import { invalidRequest, modelNotServed, type ApiError } from './errors.js';
import type { ImageRef } from './image-ref.js';
import type { ModelSpec, Tier } from './models.js';
import type { UpstreamKind } from './upstream-kinds.js';

/** The one validated form every request becomes, whatever its encoding and dialect. */
export interface NormalizedVideoRequest {
  readonly model: ModelSpec;
  /** The name the client used (an alias, perhaps): model allow-lists may name either. */
  readonly requestedModel: string;
  readonly prompt: string;
  readonly seconds: number;
  readonly resolution: Tier;
  readonly aspectRatio: string;
  readonly references: readonly ImageRef[];
  /** The field the references came in, for errors about them. */
  readonly referenceField: string;
}

/**
 * Why an upstream of `kind` cannot take the request, from the model table's rules for that kind, as the 400
 * the client gets when no upstream can; undefined when it can. Checked before any upstream call.
 */
export function kindRefusal(req: NormalizedVideoRequest, kind: UpstreamKind): ApiError | undefined {
  const rules = req.model.kinds[kind];
  const id = req.model.id;
  if (!rules) return modelNotServed(id);
  if (rules.aspectRatios && !rules.aspectRatios.includes(req.aspectRatio)) {
    return invalidRequest(`Model '${id}' supports aspect ratios ${rules.aspectRatios.join(', ')} here; got '${req.aspectRatio}'.`, 'aspect_ratio', 'unsupported_value');
  }
  const refs = req.references.length;
  if (rules.maxReferences !== undefined && refs > rules.maxReferences) {
    return invalidRequest(`Model '${id}' takes at most ${rules.maxReferences} reference images here; got ${refs}.`, req.referenceField, 'too_many_images');
  }
  if (refs > 1 && rules.maxSecondsWithReferences !== undefined && req.seconds > rules.maxSecondsWithReferences) {
    return invalidRequest(
      `Model '${id}' takes at most ${rules.maxSecondsWithReferences} seconds with several reference images here; got ${req.seconds}.`,
      'seconds',
      'unsupported_value',
    );
  }
  return undefined;
}
