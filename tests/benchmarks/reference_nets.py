"""The junyanz pytorch-CycleGAN-and-pix2pix networks and training steps, in their original layout.

FOR BENCHMARKING ONLY: this is the yardstick colorbench's own methods are timed against
(``test_reference_step_bench.py``), not product code. It mirrors the reference repository's
``models/networks.py`` (``UnetGenerator``/``UnetSkipConnectionBlock``, ``NLayerDiscriminator``,
``ResnetGenerator``/``ResnetBlock``, ``GANLoss``, ``init_weights``/``init_net``), ``util/image_pool.py``
and ``optimize_parameters`` of ``pix2pix_model.py``/``cycle_gan_model.py``, written from that code
(there is no network here to vendor it), keeping its structure, defaults and update order:

- fp32, ``torch.optim.Adam(lr=2e-4, betas=(0.5, 0.999))``, ``set_requires_grad`` toggling, D on the
  detached fake (pix2pix), ImagePool of 50 with Python's ``random`` (CycleGAN);
- ``init_net``: normal(0, 0.02) init, and on a GPU each net wrapped in ``nn.DataParallel`` on one
  device, as ``gpu_ids=[0]`` does; ``BaseModel`` sets ``cudnn.benchmark`` for fixed-size inputs;
- ``set_input`` copies the collated host batch to the device every step; ``train.py`` reads the
  losses (a device sync) every ``print_freq`` = 100 images.

Colorization as the reference does it: ``colorization`` dataset mode (Lab, ``L/50 - 1``, ``ab/110``),
pix2pix with ``input_nc=1, output_nc=2`` and D on the 3-channel (L, ab) pair. CycleGAN here maps
A = L (1 channel) to B = Lab (3 channels), its paired setting: each L batched with its own colour
image, identity loss off (the reference allows it only for ``input_nc == output_nc``).

The regression baseline has no junyanz counterpart: its yardstick is the same network
(colorbench's ``EncoderDecoder``) in the textbook loop, fp32, plain Adam, host batch copied each step.
"""

from __future__ import annotations

import functools
import itertools
import random

import torch
from torch import nn

from bench.methods.networks import EncoderDecoder, resnet_blocks_for, unet_levels

PRINT_FREQ = 100  # train.py: losses are read (float(), a device sync) every print_freq images


# -- models/networks.py ---------------------------------------------------------------------------


class Identity(nn.Module):
    def forward(self, x):
        return x


def get_norm_layer(norm_type="instance"):
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda x: Identity()
    raise NotImplementedError(f"normalization layer [{norm_type}] is not found")


def _use_bias(norm_layer) -> bool:
    if type(norm_layer) == functools.partial:  # noqa: E721 -- the reference's own test
        return norm_layer.func == nn.InstanceNorm2d
    return norm_layer == nn.InstanceNorm2d


def init_weights(net, init_type="normal", init_gain=0.02):
    def init_func(m):
        classname = m.__class__.__name__
        if hasattr(m, "weight") and (classname.find("Conv") != -1 or classname.find("Linear") != -1):
            if init_type != "normal":
                raise NotImplementedError(f"initialization method [{init_type}] is not mirrored here")
            nn.init.normal_(m.weight.data, 0.0, init_gain)
            if hasattr(m, "bias") and m.bias is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif classname.find("BatchNorm2d") != -1:
            nn.init.normal_(m.weight.data, 1.0, init_gain)
            nn.init.constant_(m.bias.data, 0.0)

    net.apply(init_func)


def init_net(net, device, init_type="normal", init_gain=0.02):
    """Move to the device; on a GPU wrap in DataParallel (the reference's ``gpu_ids=[0]``); init."""
    device = torch.device(device)
    if device.type == "cuda":
        net.to(device)
        net = nn.DataParallel(net, [device.index or 0])
    else:
        net.to(device)
    init_weights(net, init_type, init_gain)
    return net


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = _use_bias(norm_layer)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)

        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            down = [downconv]
            up = [uprelu, upconv, nn.Tanh()]
            model = down + [submodule] + up
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            down = [downrelu, downconv]
            up = [uprelu, upconv, upnorm]
            model = down + up
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            down = [downrelu, downconv, downnorm]
            up = [uprelu, upconv, upnorm]
            if use_dropout:
                model = down + [submodule] + up + [nn.Dropout(0.5)]
            else:
                model = down + [submodule] + up
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # add skip connections


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        unet_block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, input_nc=None, submodule=None, norm_layer=norm_layer,
                                             innermost=True)
        for _ in range(num_downs - 5):  # intermediate layers with ngf * 8 filters
            unet_block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, input_nc=None, submodule=unet_block,
                                                 norm_layer=norm_layer, use_dropout=use_dropout)
        # gradually reduce the number of filters from ngf * 8 to ngf
        unet_block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, input_nc=None, submodule=unet_block,
                                             norm_layer=norm_layer)
        unet_block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, input_nc=None, submodule=unet_block,
                                             norm_layer=norm_layer)
        unet_block = UnetSkipConnectionBlock(ngf, ngf * 2, input_nc=None, submodule=unet_block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=unet_block, outermost=True,
                                             norm_layer=norm_layer)

    def forward(self, input):
        return self.model(input)


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

    def build_conv_block(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        pads = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}
        if padding_type not in (*pads, "zero"):
            raise NotImplementedError(f"padding [{padding_type}] is not implemented")
        p = 1 if padding_type == "zero" else 0
        conv_block = [pads[padding_type](1)] if padding_type in pads else []
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]
        conv_block += [pads[padding_type](1)] if padding_type in pads else []
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
        return nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)  # add skip connections


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6,
                 padding_type="reflect"):
        assert n_blocks >= 0
        super().__init__()
        use_bias = _use_bias(norm_layer)
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf), nn.ReLU(True)]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 2**n_downsampling
        for _ in range(n_blocks):
            model += [ResnetBlock(ngf * mult, padding_type=padding_type, norm_layer=norm_layer,
                                  use_dropout=use_dropout, use_bias=use_bias)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(int(ngf * mult / 2)), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3)]
        model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        use_bias = _use_bias(norm_layer)
        kw, padw = 4, 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):  # gradually increase the number of filters
            nf_mult_prev = nf_mult
            nf_mult = min(2**n, 8)
            sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw,
                                   bias=use_bias),
                         norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        nf_mult_prev = nf_mult
        nf_mult = min(2**n_layers, 8)
        sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw,
                               bias=use_bias),
                     norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]  # 1-channel prediction map
        self.model = nn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


class GANLoss(nn.Module):
    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        self.register_buffer("real_label", torch.tensor(target_real_label))
        self.register_buffer("fake_label", torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        if gan_mode == "lsgan":
            self.loss = nn.MSELoss()
        elif gan_mode == "vanilla":
            self.loss = nn.BCEWithLogitsLoss()
        else:
            raise NotImplementedError(f"gan mode {gan_mode} is not mirrored here")

    def get_target_tensor(self, prediction, target_is_real):
        target_tensor = self.real_label if target_is_real else self.fake_label
        return target_tensor.expand_as(prediction)

    def __call__(self, prediction, target_is_real):
        return self.loss(prediction, self.get_target_tensor(prediction, target_is_real))


# -- util/image_pool.py ---------------------------------------------------------------------------


class ImagePool:
    def __init__(self, pool_size, seed=0):
        self.pool_size = pool_size
        self.random = random.Random(seed)  # the reference draws from Python's global `random`
        if self.pool_size > 0:
            self.num_imgs = 0
            self.images = []

    def query(self, images):
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:  # the buffer is not full: keep inserting
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = self.random.uniform(0, 1)
                if p > 0.5:  # return a stored image, store the current one
                    random_id = self.random.randint(0, self.pool_size - 1)
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return torch.cat(return_images, 0)


# -- models/*_model.py ----------------------------------------------------------------------------


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


def _adam(params, lr=2e-4, beta1=0.5):
    return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999))


class ReferenceModel:
    """What ``BaseModel`` gives every model here: the device, ``set_input`` and the loss readout."""

    loss_names: list[str] = []

    def __init__(self, device):
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # BaseModel, for every preprocess but scale_width

    def set_input(self, input):
        self.real_A = input["A"].to(self.device)
        self.real_B = input["B"].to(self.device)

    def get_current_losses(self):
        # float(loss) in the reference; .item() is the same read without autograd's warning
        return {name: getattr(self, "loss_" + name).item() for name in self.loss_names}

    def nets(self) -> dict[str, nn.Module]:
        return {name: getattr(self, "net" + name) for name in self.model_names}


class Pix2PixColorization(ReferenceModel):
    """``colorization_model`` (a ``pix2pix_model``): unet_256, batch norm, dropout, vanilla GAN, L1 x 100."""

    loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
    model_names = ["G", "D"]

    def __init__(self, size, device, input_nc=1, output_nc=2, ngf=64, ndf=64, lambda_L1=100.0):
        super().__init__(device)
        norm_layer = get_norm_layer("batch")
        self.netG = init_net(UnetGenerator(input_nc, output_nc, unet_levels(size), ngf, norm_layer=norm_layer,
                                           use_dropout=True), device)
        self.netD = init_net(NLayerDiscriminator(input_nc + output_nc, ndf, n_layers=3, norm_layer=norm_layer), device)
        self.criterionGAN = GANLoss("vanilla").to(self.device)
        self.criterionL1 = torch.nn.L1Loss()
        self.lambda_L1 = lambda_L1
        self.optimizer_G = _adam(self.netG.parameters())
        self.optimizer_D = _adam(self.netD.parameters())

    def forward(self):
        self.fake_B = self.netG(self.real_A)

    def backward_D(self):
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        pred_fake = self.netD(fake_AB.detach())
        self.loss_D_fake = self.criterionGAN(pred_fake, False)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        pred_real = self.netD(real_AB)
        self.loss_D_real = self.criterionGAN(pred_real, True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        self.loss_D.backward()

    def backward_G(self):
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        pred_fake = self.netD(fake_AB)
        self.loss_G_GAN = self.criterionGAN(pred_fake, True)
        self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.lambda_L1
        self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.loss_G.backward()

    def optimize_parameters(self):
        self.forward()
        set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        self.backward_D()
        self.optimizer_D.step()
        set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()


class CycleGANColorization(ReferenceModel):
    """``cycle_gan_model``: resnet_9blocks (6 below 256 px), instance norm, no dropout, lsgan, cycle x 10,
    pools of 50; A = L, B = Lab, identity loss off."""

    loss_names = ["D_A", "G_A", "cycle_A", "D_B", "G_B", "cycle_B"]
    model_names = ["G_A", "G_B", "D_A", "D_B"]

    def __init__(self, size, device, input_nc=1, output_nc=3, ngf=64, ndf=64, lambda_A=10.0, lambda_B=10.0,
                 pool_size=50):
        super().__init__(device)
        norm_layer = get_norm_layer("instance")
        n_blocks = resnet_blocks_for(size)
        self.netG_A = init_net(ResnetGenerator(input_nc, output_nc, ngf, norm_layer, False, n_blocks), device)
        self.netG_B = init_net(ResnetGenerator(output_nc, input_nc, ngf, norm_layer, False, n_blocks), device)
        self.netD_A = init_net(NLayerDiscriminator(output_nc, ndf, 3, norm_layer), device)
        self.netD_B = init_net(NLayerDiscriminator(input_nc, ndf, 3, norm_layer), device)
        self.lambda_A, self.lambda_B = lambda_A, lambda_B
        self.fake_A_pool = ImagePool(pool_size, seed=1)
        self.fake_B_pool = ImagePool(pool_size, seed=2)
        self.criterionGAN = GANLoss("lsgan").to(self.device)
        self.criterionCycle = torch.nn.L1Loss()
        self.optimizer_G = _adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()))
        self.optimizer_D = _adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()))

    def forward(self):
        self.fake_B = self.netG_A(self.real_A)  # G_A(A)
        self.rec_A = self.netG_B(self.fake_B)  # G_B(G_A(A))
        self.fake_A = self.netG_B(self.real_B)  # G_B(B)
        self.rec_B = self.netG_A(self.fake_A)  # G_A(G_B(B))

    def backward_D_basic(self, netD, real, fake):
        pred_real = netD(real)
        loss_D_real = self.criterionGAN(pred_real, True)
        pred_fake = netD(fake.detach())
        loss_D_fake = self.criterionGAN(pred_fake, False)
        loss_D = (loss_D_real + loss_D_fake) * 0.5
        loss_D.backward()
        return loss_D

    def backward_D_A(self):
        fake_B = self.fake_B_pool.query(self.fake_B)
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, fake_B)

    def backward_D_B(self):
        fake_A = self.fake_A_pool.query(self.fake_A)
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, fake_A)

    def backward_G(self):
        self.loss_idt_A = self.loss_idt_B = 0  # lambda_identity = 0: input_nc != output_nc
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * self.lambda_A
        self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * self.lambda_B
        self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                       + self.loss_idt_A + self.loss_idt_B)
        self.loss_G.backward()

    def optimize_parameters(self):
        self.forward()
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.backward_D_A()
        self.backward_D_B()
        self.optimizer_D.step()


class RegressionLoop(ReferenceModel):
    """No junyanz counterpart: colorbench's baseline network in the textbook fp32 loop (MSE, Adam 1e-3)."""

    loss_names = ["L2"]
    model_names = ["G"]

    def __init__(self, size, device, width=64, depth=3, lr=1e-3):
        super().__init__(device)
        self.netG = init_net(EncoderDecoder(1, 2, width, depth), device)
        self.criterion = nn.MSELoss()
        self.optimizer = torch.optim.Adam(self.netG.parameters(), lr=lr)

    def optimize_parameters(self):
        self.loss_L2 = self.criterion(self.netG(self.real_A), self.real_B)
        self.optimizer.zero_grad()
        self.loss_L2.backward()
        self.optimizer.step()


# colorbench method name -> its reference model
REFERENCE_MODELS = {"pix2pix": Pix2PixColorization, "cyclegan-paired": CycleGANColorization, "baseline": RegressionLoop}


def reference_input(method: str, L: torch.Tensor, ab: torch.Tensor) -> dict[str, torch.Tensor]:
    """The collated host batch the reference's DataLoader hands ``set_input`` (A = L; B = ab, or Lab for CycleGAN)."""
    B = torch.cat([L, ab], 1) if method == "cyclegan-paired" else ab
    return {"A": L.cpu(), "B": B.cpu()}


def run_reference_steps(model: ReferenceModel, data: dict, steps: int, state: dict) -> None:
    """``steps`` iterations of train.py's inner loop on one collated batch (``state`` carries total_iters)."""
    batch_size = len(data["A"])
    for _ in range(steps):
        state["total_iters"] = state.get("total_iters", 0) + batch_size
        model.set_input(data)
        model.optimize_parameters()
        if state["total_iters"] % PRINT_FREQ == 0:
            model.get_current_losses()
