"""ImageNet statistics shared by the image code and the ImageNet models, in one place."""

#: ImageNet channel means in BGR order, as subtracted by ``keras.applications.vgg19.preprocess_input``
#: (Caffe convention; Simonyan & Zisserman 2015).
IMAGENET_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)

#: The same means as an 8-bit RGB colour (rounded): the padding colour of letterboxed
#: images, which VGG preprocessing maps to (almost) zero.
IMAGENET_MEAN_RGB: tuple[int, int, int] = tuple(round(c) for c in reversed(IMAGENET_MEAN_BGR))
