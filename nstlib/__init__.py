"""nstlib: the tested helper library of a hands-on course on neural style transfer.

One module per concept, each citing its paper and the notebook that teaches it. A method's
networks, losses, export/load and `pretrained()` live in `<method>.py`; its training loop, on the
shared skeleton in `training`, in `<method>_training.py`.

Foundations
    images           load_image / save_image / show_images / as_mask: (B, 3, H, W) RGB floats in [0, 1]
    files            atomic_write (every saved file), IMAGE_SUFFIXES
    vgg, features    the VGG-16/19 stacks with the papers' layer names; VGGFeatures.extract(x, layers)
    weights          pretrained VGG weights: registry, download, hash check, HDF5 conversion, cache
    registry         the one reader of the shipped TSV registries and of the NSTLIB_*_DIR overrides
    data, download   photos, paintings and masks by name, with credits; hash-checked HTTPS downloads
    runtime          device, seeding, quick mode, precision (fp32/bf16), describe(), info()
    plotting, widgets  image grids, loss curves, live views; the notebooks' pickers and sliders
Image optimisation (notebooks 01-04, 09)
    losses           content loss, Gram matrix, style loss, total variation (Gatys et al. 2016)
    optimize         optimize_image: L-BFGS or Adam on the pixels; optimize_scales: coarse-to-fine
    stylize          stylize(): Gatys transfer with blending, masks, colour preservation, coarse-to-fine
    color            luminance-only transfer and histogram matching (Gatys et al. 2017)
    mmd              style losses as MMD^2 with four kernels (Li et al. 2017)
    mrf              CNNMRF: nearest style patches as a loss term (Li & Wand 2016; notebook 09)
    photorealism     the matting Laplacian, semantic style terms, Deep Photo's pairs (Luan et al. 2017; notebook 09)
Feed-forward networks (notebooks 05-08)
    training         the training skeleton: resume, steps, callbacks, checkpoints, bf16, TrainRun
    distributed      the same skeleton on N processes under torchrun (NCCL or gloo): global batch, averaged gradients
    datasets         image sets, random crops, unpaired batches
    training_sets    training sets by name (BSDS500, WikiArt, Monet, horse2zebra, ...), pinned per file
    adain, adain_training          AdaIN (Huang & Belongie 2017)
    stylebank, stylebank_training  StyleBank (Chen et al. 2017)
    cyclegan, cyclegan_training    CycleGAN and pix2pix (Zhu et al. 2017, Isola et al. 2017)
    translation_task               an unpaired task with a known answer; FolderTask (horse2zebra)
    probe            a linear probe on frozen VGG statistics: is a translation in its target domain? (CycleGAN's FCN score, offline)
    johnson          Johnson et al.'s transform network, conditional instance norm, the ml5 weights
    johnson_training its training, one style or CIN (Johnson et al. 2016, Dumoulin et al. 2017)
    video            stylising a video frame by frame with any feed-forward network; flicker
    models           the networks this project trained and ships (data/models/)
    gpu_kit          packing a training run for a lent GPU and running it there
Measuring (notebook 10)
    metrics, compare content, style, colour and speed measures; every method on held-out pairs
    preference       pairwise votes (a widget, a JSON file a class can pool), Bradley-Terry ranking
Teaching
    exercises        check(name, fn): the graded exercises, with a specific hint for each known mistake
    site             the course site: README and the executed notebooks as HTML pages (python -m nstlib site)

`python -m nstlib info` says what this machine has.
"""
__version__ = "0.1.0"

from .images import load_image, save_image, show, show_images, to_pil  # noqa: E402
from .runtime import config, describe, get_device, is_quick, seed_everything  # noqa: E402

__all__ = [
    "load_image", "save_image", "show", "show_images", "to_pil",
    "config", "describe", "get_device", "is_quick", "seed_everything",
]
