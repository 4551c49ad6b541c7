import type { Family } from '../../domain/models.js';
import { encodeGrokVideo } from './grok-video.js';
import { encodeImagine } from './imagine.js';
import type { CreateEncoder } from './types.js';

/** One encoder per upstream family; the model table says which family a model belongs to. */
export const ENCODERS: Readonly<Record<Family, CreateEncoder>> = {
  imagine: encodeImagine,
  'grok-video': encodeGrokVideo,
};
