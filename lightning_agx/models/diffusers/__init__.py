"""The diffusers wing: diffusion text-to-audio models built from diffusers' classes behind `TAGModel`.

- `denoiser`: the declared `Denoiser` interface `DiffusersTAG` calls, and Stable Audio's DiT behind it;
- `text`: the `TextEncoder` protocol and the encoders (hashed lookup table, T5);
- `tag`: `DiffusersTAG`, the adapter (sampling, the trajectory, the reference forward);
- `attention`: the edited attention processors (the mask inside diffusers' attention);
- `audioldm2`: AudioLDM 2's UNet, text side and decoder;
- `models`: the loaders of the names `load_model` routes here (debug-diffusion, Stable Audio Open, AudioLDM 2).

Importing this package imports none of them (nor diffusers); the modules import diffusers only when they run.
"""
